;; http_get: stdin is the request head JSON ({"url": "https://..."}); the answer is
;; the upstream's body, or 502 with the error JSON the host gave
;; ({"error": {"type": "forbidden_host", ...}}).
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "http_request" (func $http_request (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "http_result" (func $http_result (param i32 i32) (result i32)))
  (import "wasmlet" "http_body" (func $http_body (param i32 i32) (result i32)))
  (import "wasmlet" "set_status" (func $set_status (param i32) (result i32)))
  (memory (export "memory") 2)
  ;; 0: an iovec {ptr, len}; 8: a byte count; 1024: the request head (4 KiB at most);
  ;; 8192: the response head or body (120 KiB at most).
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (local $head i32)
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 4096))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $head
      (call $http_request (i32.const 1024) (i32.load (i32.const 8)) (i32.const 0) (i32.const 0)))
    (local.set $head (call $http_result (i32.const 8192) (local.get $head)))
    ;; a failure's head starts with {"e (for {"error"), a response's with {"s
    (if (i32.eq (i32.load8_u (i32.const 8194)) (i32.const 0x65))
      (then
        (drop (call $set_status (i32.const 502)))
        (call $write (i32.const 8192) (local.get $head)))
      (else
        (call $write (i32.const 8192) (call $http_body (i32.const 8192) (i32.const 122880)))))))

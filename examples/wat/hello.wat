;; hello: writes "Hello, wasmlet!" to stdout, which becomes the response body.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: {ptr = 16, len = 15}; the text at 16.
  (data (i32.const 0) "\10\00\00\00\0f\00\00\00")
  (data (i32.const 16) "Hello, wasmlet!")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))

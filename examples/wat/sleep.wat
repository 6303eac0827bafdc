;; sleep: reads a decimal number of milliseconds from stdin, sleeps that long in the
;; host (WASI poll_oneoff on the monotonic clock), then writes "slept".
;; Used for slow functions: concurrency limits, and a guest stuck inside a host call.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0: iovec for reading {1024, 64}; 8: bytes read; 16: iovec for "slept" {96, 5}
  ;; 128: subscription (48 bytes); 192: event (32 bytes); 240: events written
  (data (i32.const 16) "\60\00\00\00\05\00\00\00")
  (data (i32.const 96) "slept")
  (func (export "_start")
    (local $i i32) (local $n i32) (local $ms i64) (local $byte i32)
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 64))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $n (i32.load (i32.const 8)))
    (block $done
      (loop $digits
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $byte (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $byte) (i32.const 48))
                     (i32.le_u (local.get $byte) (i32.const 57)))
          (then
            (local.set $ms (i64.add (i64.mul (local.get $ms) (i64.const 10))
                                    (i64.extend_i32_u (i32.sub (local.get $byte) (i32.const 48)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $digits)))
    ;; subscription: userdata 0, tag 0 (clock), clock id 1 (monotonic), timeout in ns
    (i64.store (i32.const 128) (i64.const 0))
    (i32.store8 (i32.const 136) (i32.const 0))
    (i32.store (i32.const 144) (i32.const 1))
    (i64.store (i32.const 152) (i64.mul (local.get $ms) (i64.const 1000000)))
    (i64.store (i32.const 160) (i64.const 0))
    (i32.store16 (i32.const 168) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 128) (i32.const 192) (i32.const 1) (i32.const 240)))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 8)))))

;; print_forever: writes to stdout in an endless loop. Past the stdout limit the host
;; interrupts it at once and answers 500 function_error (output limit), not a timeout.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: {ptr = 16, len = 4096}; the bytes at 16 are whatever memory holds.
  (data (i32.const 0) "\10\00\00\00\00\10\00\00")
  (func (export "_start")
    (loop $forever
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $forever))))

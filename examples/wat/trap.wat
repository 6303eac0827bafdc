;; trap: an unexpected error in function code (a WebAssembly trap): 500 function_error.
(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable))

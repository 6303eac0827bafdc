;; infinite_loop: the spec's failure scenario 1. Never returns; the timeout ends it (504).
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever (br $forever))))

;; memory_hog: the spec's failure scenario 2. Asks for 200 MB in one growth; over the
;; 128 MB limit the growth is refused and the function traps (507, not 500).
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 3200)) (i32.const -1))
      (then unreachable))))

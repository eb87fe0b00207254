;; Frozen batch norm (or bias) plus activation, forward and backward, four channels at a time, on the
;; tfjs wasm backend's own memory (imported). The float ops are those of bn-activation.ts's JS loops
;; in the same order (f32 multiply, then f32 add; sums in f64), so the results equal them bit for bit.
;; Tensors are NHWC with `channels` a multiple of 4; pointers are byte offsets; a and b hold the
;; per-channel scale and shift.
;; Build: node tools/build-wasm.mjs (writes affine-module.ts next to this file).
(module
  (import "env" "memory" (memory 1))

  ;; out = act(x * a + b); a negative z becomes z * negative, or +0 when negative is 0 (relu),
  ;; never z * 0 = -0.
  (func (export "affineForward")
    (param $x i32) (param $out i32) (param $pixels i32) (param $channels i32)
    (param $a i32) (param $b i32) (param $negative f32)
    (local $rowBytes i32) (local $c i32)
    (local $neg v128) (local $negIsZero v128) (local $z v128) (local $scaled v128)
    (local.set $rowBytes (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $neg (f32x4.splat (local.get $negative)))
    (local.set $negIsZero (f32x4.eq (local.get $neg) (v128.const f32x4 0 0 0 0)))
    (block $done
      (loop $pixel
        (br_if $done (i32.eqz (local.get $pixels)))
        (local.set $c (i32.const 0))
        (loop $lanes
          (local.set $z
            (f32x4.add
              (f32x4.mul
                (v128.load (i32.add (local.get $x) (local.get $c)))
                (v128.load (i32.add (local.get $a) (local.get $c))))
              (v128.load (i32.add (local.get $b) (local.get $c)))))
          (local.set $scaled (v128.andnot (f32x4.mul (local.get $z) (local.get $neg)) (local.get $negIsZero)))
          (v128.store (i32.add (local.get $out) (local.get $c))
            (v128.bitselect (local.get $scaled) (local.get $z)
              (f32x4.lt (local.get $z) (v128.const f32x4 0 0 0 0))))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (br_if $lanes (i32.lt_u (local.get $c) (local.get $rowBytes))))
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $out (i32.add (local.get $out) (local.get $rowBytes)))
        (local.set $pixels (i32.sub (local.get $pixels) (i32.const 1)))
        (br $pixel))))

  ;; d = dy, or its negative branch where the activation's input z (x * a + b with batch norm, else
  ;; x itself) is not > 0; dConv = d * a with batch norm, else d. Adds d to the f64 bias sums at
  ;; `sums` and, with batch norm, d * x to the f64 product sums right after them (channels each).
  (func (export "affineBackward")
    (param $x i32) (param $dy i32) (param $dConv i32) (param $pixels i32) (param $channels i32)
    (param $a i32) (param $b i32) (param $negative f32) (param $batchNorm i32) (param $sums i32)
    (local $rowBytes i32) (local $c i32) (local $bias i32) (local $product i32)
    (local $neg v128) (local $negIsZero v128) (local $xv v128) (local $z v128) (local $d v128)
    (local $dLow v128) (local $dHigh v128)
    (local.set $rowBytes (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $neg (f32x4.splat (local.get $negative)))
    (local.set $negIsZero (f32x4.eq (local.get $neg) (v128.const f32x4 0 0 0 0)))
    (block $done
      (loop $pixel
        (br_if $done (i32.eqz (local.get $pixels)))
        (local.set $c (i32.const 0))
        (loop $lanes
          (local.set $xv (v128.load (i32.add (local.get $x) (local.get $c))))
          (local.set $z (local.get $xv))
          (if (local.get $batchNorm)
            (then
              (local.set $z
                (f32x4.add
                  (f32x4.mul (local.get $xv) (v128.load (i32.add (local.get $a) (local.get $c))))
                  (v128.load (i32.add (local.get $b) (local.get $c)))))))
          (local.set $d (v128.load (i32.add (local.get $dy) (local.get $c))))
          (local.set $d
            (v128.bitselect (local.get $d)
              (v128.andnot (f32x4.mul (local.get $d) (local.get $neg)) (local.get $negIsZero))
              (f32x4.gt (local.get $z) (v128.const f32x4 0 0 0 0))))
          ;; f64 sums of channels c, c+1 (low lanes) and c+2, c+3 (high lanes)
          (local.set $dLow (f64x2.promote_low_f32x4 (local.get $d)))
          (local.set $dHigh (f64x2.promote_low_f32x4
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $d) (local.get $d))))
          (local.set $bias (i32.add (local.get $sums) (i32.shl (local.get $c) (i32.const 1))))
          (v128.store (local.get $bias) (f64x2.add (v128.load (local.get $bias)) (local.get $dLow)))
          (v128.store offset=16 (local.get $bias) (f64x2.add (v128.load offset=16 (local.get $bias)) (local.get $dHigh)))
          (if (local.get $batchNorm)
            (then
              (local.set $product (i32.add (local.get $bias) (i32.shl (local.get $rowBytes) (i32.const 1))))
              (v128.store (local.get $product)
                (f64x2.add (v128.load (local.get $product))
                  (f64x2.mul (local.get $dLow) (f64x2.promote_low_f32x4 (local.get $xv)))))
              (v128.store offset=16 (local.get $product)
                (f64x2.add (v128.load offset=16 (local.get $product))
                  (f64x2.mul (local.get $dHigh)
                    (f64x2.promote_low_f32x4
                      (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv))))))
              (local.set $d (f32x4.mul (local.get $d) (v128.load (i32.add (local.get $a) (local.get $c)))))))
          (v128.store (i32.add (local.get $dConv) (local.get $c)) (local.get $d))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (br_if $lanes (i32.lt_u (local.get $c) (local.get $rowBytes))))
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $dy (i32.add (local.get $dy) (local.get $rowBytes)))
        (local.set $dConv (i32.add (local.get $dConv) (local.get $rowBytes)))
        (local.set $pixels (i32.sub (local.get $pixels) (i32.const 1)))
        (br $pixel)))))

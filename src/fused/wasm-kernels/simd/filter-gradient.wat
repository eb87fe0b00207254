;; The filter gradient of a convolution with few input values per output position (a small patch:
;; kernel height x width x input channels, as in a network's first layer on RGB), without im2col:
;; dW[t][co] = sum over output positions p of x(p, t) * dy(p, co), for every tap t of the patch.
;; Two taps and sixteen output channels at a time stay in registers while one output row is
;; summed in float32; each row's sums are then added to float64 sums (so a band of many rows, or
;; many bands, collects no float32 rounding between rows). On the tfjs wasm backend's memory
;; (imported); pointers are byte offsets. x is the unpadded band [batch, inHeight, inWidth, cin]
;; the convolution reads without padding, dy is [batch, outHeight, outWidth, cout], cout a multiple
;; of 16. `taps` holds, per tap, the byte offset (i32) of its input value from the first input
;; value of an output position; their count is even (an odd patch gets a spare tap whose sums row
;; the caller ignores). `sums` is float64 [taps][cout]. Batch, rows and columns are at least 1.
;; Build: node tools/build-wasm.mjs (writes filter-gradient-module.ts next to this file).
(module
  (import "env" "memory" (memory 1))

  ;; sums[t][co .. co + 4] += acc (four float32 lanes, added as float64)
  (func $addLanes (param $at i32) (param $acc v128)
    (v128.store (local.get $at)
      (f64x2.add (v128.load (local.get $at)) (f64x2.promote_low_f32x4 (local.get $acc))))
    (v128.store offset=16 (local.get $at)
      (f64x2.add (v128.load offset=16 (local.get $at))
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $acc) (local.get $acc))))))

  (func (export "filterGradient")
    (param $x i32) (param $dy i32) (param $sums i32) (param $taps i32) (param $tapCount i32)
    (param $batch i32) (param $outHeight i32) (param $outWidth i32) (param $cout i32)
    (param $xRowBytes i32) (param $xRowsPerOutRow i32) (param $xImageBytes i32) (param $xStepBytes i32)
    (local $n i32) (local $oh i32) (local $co i32) (local $t i32) (local $ow i32)
    (local $xRow i32) (local $dyRow i32) (local $dyPixelBytes i32)
    (local $px0 i32) (local $px1 i32) (local $pd i32) (local $row0 i32) (local $row1 i32)
    (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $d3 v128) (local $s0 v128) (local $s1 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local.set $dyPixelBytes (i32.shl (local.get $cout) (i32.const 2)))
    (local.set $dyRow (local.get $dy))
    (local.set $n (i32.const 0))
    (loop $image
      (local.set $oh (i32.const 0))
      (loop $row
        (local.set $xRow
          (i32.add (i32.add (local.get $x) (i32.mul (local.get $n) (local.get $xImageBytes)))
            (i32.mul (i32.mul (local.get $oh) (local.get $xRowsPerOutRow)) (local.get $xRowBytes))))
        (local.set $co (i32.const 0))
        (loop $channels
          (local.set $t (i32.const 0))
          (loop $tapPair
            (local.set $px0 (i32.add (local.get $xRow) (i32.load (i32.add (local.get $taps) (i32.shl (local.get $t) (i32.const 2))))))
            (local.set $px1 (i32.add (local.get $xRow) (i32.load offset=4 (i32.add (local.get $taps) (i32.shl (local.get $t) (i32.const 2))))))
            (local.set $pd (i32.add (local.get $dyRow) (i32.shl (local.get $co) (i32.const 2))))
            (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
            (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $a3 (v128.const i32x4 0 0 0 0))
            (local.set $b0 (v128.const i32x4 0 0 0 0)) (local.set $b1 (v128.const i32x4 0 0 0 0))
            (local.set $b2 (v128.const i32x4 0 0 0 0)) (local.set $b3 (v128.const i32x4 0 0 0 0))
            (local.set $ow (local.get $outWidth))
            (loop $position
              (local.set $d0 (v128.load (local.get $pd)))
              (local.set $d1 (v128.load offset=16 (local.get $pd)))
              (local.set $d2 (v128.load offset=32 (local.get $pd)))
              (local.set $d3 (v128.load offset=48 (local.get $pd)))
              (local.set $s0 (f32x4.splat (f32.load (local.get $px0))))
              (local.set $s1 (f32x4.splat (f32.load (local.get $px1))))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s0) (local.get $d0))))
              (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s0) (local.get $d1))))
              (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s0) (local.get $d2))))
              (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s0) (local.get $d3))))
              (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $s1) (local.get $d0))))
              (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $s1) (local.get $d1))))
              (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $s1) (local.get $d2))))
              (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $s1) (local.get $d3))))
              (local.set $px0 (i32.add (local.get $px0) (local.get $xStepBytes)))
              (local.set $px1 (i32.add (local.get $px1) (local.get $xStepBytes)))
              (local.set $pd (i32.add (local.get $pd) (local.get $dyPixelBytes)))
              (local.set $ow (i32.sub (local.get $ow) (i32.const 1)))
              (br_if $position (local.get $ow)))
            ;; rows t and t + 1 of the float64 sums, at channel co (8 bytes per sum)
            (local.set $row0 (i32.add (local.get $sums)
              (i32.shl (i32.add (i32.mul (local.get $t) (local.get $cout)) (local.get $co)) (i32.const 3))))
            (local.set $row1 (i32.add (local.get $row0) (i32.shl (local.get $cout) (i32.const 3))))
            (call $addLanes (local.get $row0) (local.get $a0))
            (call $addLanes (i32.add (local.get $row0) (i32.const 32)) (local.get $a1))
            (call $addLanes (i32.add (local.get $row0) (i32.const 64)) (local.get $a2))
            (call $addLanes (i32.add (local.get $row0) (i32.const 96)) (local.get $a3))
            (call $addLanes (local.get $row1) (local.get $b0))
            (call $addLanes (i32.add (local.get $row1) (i32.const 32)) (local.get $b1))
            (call $addLanes (i32.add (local.get $row1) (i32.const 64)) (local.get $b2))
            (call $addLanes (i32.add (local.get $row1) (i32.const 96)) (local.get $b3))
            (local.set $t (i32.add (local.get $t) (i32.const 2)))
            (br_if $tapPair (i32.lt_u (local.get $t) (local.get $tapCount))))
          (local.set $co (i32.add (local.get $co) (i32.const 16)))
          (br_if $channels (i32.lt_u (local.get $co) (local.get $cout))))
        (local.set $dyRow (i32.add (local.get $dyRow) (i32.mul (local.get $outWidth) (local.get $dyPixelBytes))))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br_if $row (i32.lt_u (local.get $oh) (local.get $outHeight))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $image (i32.lt_u (local.get $n) (local.get $batch)))))
)

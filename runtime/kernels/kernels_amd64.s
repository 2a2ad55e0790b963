//go:build amd64 && !purego

#include "textflag.h"
#include "dpbf16_amd64.h"

// HSUM4Y sums each of Y0..Y3 across its 8 lanes and stores the four sums
// as float32 at off(DX). Clobbers Y0..Y3.
#define HSUM4Y(off) \
	VHADDPS Y1, Y0, Y0; \
	VHADDPS Y3, Y2, Y2; \
	VHADDPS Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS X1, X0, X0; \
	VMOVUPS X0, off(DX)

// FOLD512 adds the upper 256 bits of Z into its lower half Y.
#define FOLD512(Z, Y) \
	VEXTRACTF64X4 $1, Z, Y16; \
	VADDPS Y16, Y, Y

// HSUM4Z reduces four zmm accumulators A..D (lower halves YA..YD) to four
// float32 at off(DX), going through Y0..Y3. Clobbers Y0..Y3, Y16.
#define HSUM4Z(A, B, C, D, YA, YB, YC, YD, off) \
	FOLD512(A, YA); \
	FOLD512(B, YB); \
	FOLD512(C, YC); \
	FOLD512(D, YD); \
	VMOVAPS YA, Y0; \
	VMOVAPS YB, Y1; \
	VMOVAPS YC, Y2; \
	VMOVAPS YD, Y3; \
	HSUM4Y(off)

// func dot4BF16DP(w *uint16, stride int, xh, xl *uint16, n32 int, out *[4]float32)
//
// out[i] = Σ_{k<32·n32} w[i·stride/2 + k]·(xh[k]+xl[k]) for i in 0..3, using
// VDPBF16PS; the activation is split into bf16 high and low parts so it
// keeps about 16 bits of mantissa. The order of operations matches one
// token of dot4x4BF16DP, so prefill and decode give identical results.
TEXT ·dot4BF16DP(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ xh+16(FP), DI
	MOVQ xl+24(FP), R10
	MOVQ n32+32(FP), CX
	MOVQ out+40(FP), DX
	LEAQ (R8)(R8*2), R9
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	TESTQ CX, CX
	JZ    dp4done

dp4loop:
	VMOVDQU16 (SI), Z4
	VMOVDQU16 (SI)(R8*1), Z5
	VMOVDQU16 (SI)(R8*2), Z6
	VMOVDQU16 (SI)(R9*1), Z7
	VMOVDQU16 (DI), Z8
	VMOVDQU16 (R10), Z9
	DPBF16_Z0_Z4_Z8
	DPBF16_Z1_Z5_Z8
	DPBF16_Z2_Z6_Z8
	DPBF16_Z3_Z7_Z8
	DPBF16_Z0_Z4_Z9
	DPBF16_Z1_Z5_Z9
	DPBF16_Z2_Z6_Z9
	DPBF16_Z3_Z7_Z9
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, R10
	DECQ CX
	JNZ  dp4loop

dp4done:
	FOLD512(Z0, Y0)
	FOLD512(Z1, Y1)
	FOLD512(Z2, Y2)
	FOLD512(Z3, Y3)
	HSUM4Y(0)
	VZEROUPPER
	RET

// func dot8BF16DP(w *uint16, stride int, xh, xl *uint16, n32 int, out *[8]float32)
//
// dot4BF16DP for eight rows at once: eight independent accumulator chains
// and eight weight streams in flight. Each row's operations are in the
// same order as in dot4BF16DP, so the results are identical.
TEXT ·dot8BF16DP(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ xh+16(FP), DI
	MOVQ xl+24(FP), R10
	MOVQ n32+32(FP), CX
	MOVQ out+40(FP), DX
	LEAQ (R8)(R8*2), R9
	LEAQ (SI)(R8*4), R11
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	TESTQ CX, CX
	JZ    dp8done

dp8loop:
	VMOVDQU16 (SI), Z8
	VMOVDQU16 (SI)(R8*1), Z9
	VMOVDQU16 (SI)(R8*2), Z10
	VMOVDQU16 (SI)(R9*1), Z11
	VMOVDQU16 (R11), Z12
	VMOVDQU16 (R11)(R8*1), Z13
	VMOVDQU16 (R11)(R8*2), Z14
	VMOVDQU16 (R11)(R9*1), Z15
	VMOVDQU16 (DI), Z16
	VMOVDQU16 (R10), Z17
	DPBF16_Z0_Z8_Z16
	DPBF16_Z1_Z9_Z16
	DPBF16_Z2_Z10_Z16
	DPBF16_Z3_Z11_Z16
	DPBF16_Z4_Z12_Z16
	DPBF16_Z5_Z13_Z16
	DPBF16_Z6_Z14_Z16
	DPBF16_Z7_Z15_Z16
	DPBF16_Z0_Z8_Z17
	DPBF16_Z1_Z9_Z17
	DPBF16_Z2_Z10_Z17
	DPBF16_Z3_Z11_Z17
	DPBF16_Z4_Z12_Z17
	DPBF16_Z5_Z13_Z17
	DPBF16_Z6_Z14_Z17
	DPBF16_Z7_Z15_Z17
	ADDQ $64, SI
	ADDQ $64, R11
	ADDQ $64, DI
	ADDQ $64, R10
	DECQ CX
	JNZ  dp8loop

dp8done:
	HSUM4Z(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3, 0)
	HSUM4Z(Z4, Z5, Z6, Z7, Y4, Y5, Y6, Y7, 16)
	VZEROUPPER
	RET

// func dot4x4BF16DP(w *uint16, wstride int, xh, xl *uint16, xstride int, n32 int, out *[16]float32)
//
// out[4t+i] = Σ_{k<32·n32} w[i·wstride/2 + k]·(xh[t·xstride/2+k]+xl[t·xstride/2+k])
// for rows i and tokens t in 0..3: a 4×4 register tile of VDPBF16PS
// accumulators, so each weight vector loaded serves four tokens.
TEXT ·dot4x4BF16DP(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ xh+16(FP), DI
	MOVQ xl+24(FP), R10
	MOVQ xstride+32(FP), R11
	MOVQ n32+40(FP), CX
	MOVQ out+48(FP), DX
	LEAQ (R8)(R8*2), R9
	LEAQ (R11)(R11*2), R12
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	TESTQ CX, CX
	JZ    t44done

t44loop:
	VMOVDQU16 (SI), Z16
	VMOVDQU16 (SI)(R8*1), Z17
	VMOVDQU16 (SI)(R8*2), Z18
	VMOVDQU16 (SI)(R9*1), Z19

	VMOVDQU16 (DI), Z20
	VMOVDQU16 (R10), Z21
	DPBF16_Z0_Z16_Z20
	DPBF16_Z1_Z17_Z20
	DPBF16_Z2_Z18_Z20
	DPBF16_Z3_Z19_Z20
	DPBF16_Z0_Z16_Z21
	DPBF16_Z1_Z17_Z21
	DPBF16_Z2_Z18_Z21
	DPBF16_Z3_Z19_Z21

	VMOVDQU16 (DI)(R11*1), Z20
	VMOVDQU16 (R10)(R11*1), Z21
	DPBF16_Z4_Z16_Z20
	DPBF16_Z5_Z17_Z20
	DPBF16_Z6_Z18_Z20
	DPBF16_Z7_Z19_Z20
	DPBF16_Z4_Z16_Z21
	DPBF16_Z5_Z17_Z21
	DPBF16_Z6_Z18_Z21
	DPBF16_Z7_Z19_Z21

	VMOVDQU16 (DI)(R11*2), Z20
	VMOVDQU16 (R10)(R11*2), Z21
	DPBF16_Z8_Z16_Z20
	DPBF16_Z9_Z17_Z20
	DPBF16_Z10_Z18_Z20
	DPBF16_Z11_Z19_Z20
	DPBF16_Z8_Z16_Z21
	DPBF16_Z9_Z17_Z21
	DPBF16_Z10_Z18_Z21
	DPBF16_Z11_Z19_Z21

	VMOVDQU16 (DI)(R12*1), Z20
	VMOVDQU16 (R10)(R12*1), Z21
	DPBF16_Z12_Z16_Z20
	DPBF16_Z13_Z17_Z20
	DPBF16_Z14_Z18_Z20
	DPBF16_Z15_Z19_Z20
	DPBF16_Z12_Z16_Z21
	DPBF16_Z13_Z17_Z21
	DPBF16_Z14_Z18_Z21
	DPBF16_Z15_Z19_Z21

	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, R10
	DECQ CX
	JNZ  t44loop

t44done:
	// Token 0 is in Z0..Z3; move the other tokens down as each is stored.
	HSUM4Z(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3, 0)
	HSUM4Z(Z4, Z5, Z6, Z7, Y4, Y5, Y6, Y7, 16)
	HSUM4Z(Z8, Z9, Z10, Z11, Y8, Y9, Y10, Y11, 32)
	HSUM4Z(Z12, Z13, Z14, Z15, Y12, Y13, Y14, Y15, 48)
	VZEROUPPER
	RET

// func dot4BF16F32x16(w *uint16, stride int, x *float32, n16 int, out *[4]float32)
//
// AVX-512F without BF16: widen each bf16 weight to float32 by a 16-bit
// shift and FMA with the float32 activation, 16 columns per step.
TEXT ·dot4BF16F32x16(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ x+16(FP), DI
	MOVQ n16+24(FP), CX
	MOVQ out+32(FP), DX
	LEAQ (R8)(R8*2), R9
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	TESTQ CX, CX
	JZ    f16done

f16loop:
	VMOVUPS   (DI), Z8
	VPMOVZXWD (SI), Z4
	VPMOVZXWD (SI)(R8*1), Z5
	VPMOVZXWD (SI)(R8*2), Z6
	VPMOVZXWD (SI)(R9*1), Z7
	VPSLLD    $16, Z4, Z4
	VPSLLD    $16, Z5, Z5
	VPSLLD    $16, Z6, Z6
	VPSLLD    $16, Z7, Z7
	VFMADD231PS Z8, Z4, Z0
	VFMADD231PS Z8, Z5, Z1
	VFMADD231PS Z8, Z6, Z2
	VFMADD231PS Z8, Z7, Z3
	ADDQ $32, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  f16loop

f16done:
	FOLD512(Z0, Y0)
	FOLD512(Z1, Y1)
	FOLD512(Z2, Y2)
	FOLD512(Z3, Y3)
	HSUM4Y(0)
	VZEROUPPER
	RET

// func dot4BF16F32x8(w *uint16, stride int, x *float32, n8 int, out *[4]float32)
//
// AVX2+FMA: widen bf16 weights to float32 and FMA, 8 columns per step.
TEXT ·dot4BF16F32x8(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ x+16(FP), DI
	MOVQ n8+24(FP), CX
	MOVQ out+32(FP), DX
	LEAQ (R8)(R8*2), R9
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ CX, CX
	JZ    f8done

f8loop:
	VMOVUPS   (DI), Y8
	VPMOVZXWD (SI), Y4
	VPMOVZXWD (SI)(R8*1), Y5
	VPMOVZXWD (SI)(R8*2), Y6
	VPMOVZXWD (SI)(R9*1), Y7
	VPSLLD    $16, Y4, Y4
	VPSLLD    $16, Y5, Y5
	VPSLLD    $16, Y6, Y6
	VPSLLD    $16, Y7, Y7
	VFMADD231PS Y8, Y4, Y0
	VFMADD231PS Y8, Y5, Y1
	VFMADD231PS Y8, Y6, Y2
	VFMADD231PS Y8, Y7, Y3
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  f8loop

f8done:
	HSUM4Y(0)
	VZEROUPPER
	RET

// func dotF32AVX2(a, b *float32, n8 int) float32
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n8+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	TESTQ CX, CX
	JZ    dotdone
	CMPQ  CX, $2
	JB    dotone

dottwo:
	VMOVUPS (SI), Y2
	VMOVUPS 32(SI), Y3
	VFMADD231PS (DI), Y2, Y0
	VFMADD231PS 32(DI), Y3, Y1
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $2, CX
	CMPQ CX, $2
	JAE  dottwo
	TESTQ CX, CX
	JZ    dotdone

dotone:
	VMOVUPS (SI), Y2
	VFMADD231PS (DI), Y2, Y0

dotdone:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func axpyF32AVX2(y, x *float32, a float32, n8 int)
TEXT ·axpyF32AVX2(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	VBROADCASTSS a+16(FP), Y0
	MOVQ n8+24(FP), CX
	TESTQ CX, CX
	JZ    axpydone

axpyloop:
	VMOVUPS (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  axpyloop

axpydone:
	VZEROUPPER
	RET

// func sumU64AVX2(p *uint64, n16 int) uint64
//
// Sums n16 blocks of 16 uint64 (128 bytes) with four independent vector
// accumulators: a streaming read that the CPU cannot skip.
TEXT ·sumU64AVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n16+8(FP), CX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	TESTQ CX, CX
	JZ    sumdone

sumloop:
	VPADDQ (SI), Y0, Y0
	VPADDQ 32(SI), Y1, Y1
	VPADDQ 64(SI), Y2, Y2
	VPADDQ 96(SI), Y3, Y3
	ADDQ $128, SI
	DECQ CX
	JNZ  sumloop

sumdone:
	VPADDQ Y1, Y0, Y0
	VPADDQ Y3, Y2, Y2
	VPADDQ Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDQ X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDQ X1, X0, X0
	VMOVQ X0, ret+16(FP)
	VZEROUPPER
	RET

// ROUNDBF16 rounds the float32 lanes of Z (bit patterns) to bfloat16,
// ties to even, leaving the 16-bit results in the low half of each lane
// of D. Z29 holds 1 and Z30 0x7fff in every lane; clobbers T.
#define ROUNDBF16(Z, T, D) \
	VPSRLD $16, Z, T; \
	VPANDD Z29, T, T; \
	VPADDD Z30, Z, D; \
	VPADDD T, D, D; \
	VPSRLD $16, D, D

// func splitBF16AVX512(x *float32, hi, lo *uint16, n16 int)
//
// hi = bf16(x), lo = bf16(x - hi), 16 lanes per step (see splitBF16).
TEXT ·splitBF16AVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ hi+8(FP), DI
	MOVQ lo+16(FP), R10
	MOVQ n16+24(FP), CX
	MOVL $1, AX
	VPBROADCASTD AX, Z29
	MOVL $0x7fff, AX
	VPBROADCASTD AX, Z30
	TESTQ CX, CX
	JZ    splitdone

splitloop:
	VMOVUPS (SI), Z0
	ROUNDBF16(Z0, Z1, Z2)
	VPMOVDW Z2, (DI)
	VPSLLD  $16, Z2, Z3
	VSUBPS  Z3, Z0, Z4
	ROUNDBF16(Z4, Z5, Z6)
	VPMOVDW Z6, (R10)
	ADDQ $64, SI
	ADDQ $32, DI
	ADDQ $32, R10
	DECQ CX
	JNZ  splitloop

splitdone:
	VZEROUPPER
	RET

// func dot4F32x8(w *float32, stride int, x *float32, n8 int, out *[4]float32)
//
// out[i] = Σ_{k<8·n8} w[i·stride/4 + k]·x[k] for i in 0..3 (AVX2+FMA):
// four rows of float32 (e.g. cached keys) against one vector.
TEXT ·dot4F32x8(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ x+16(FP), DI
	MOVQ n8+24(FP), CX
	MOVQ out+32(FP), DX
	LEAQ (R8)(R8*2), R9
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ CX, CX
	JZ    d4done

d4loop:
	VMOVUPS (DI), Y8
	VFMADD231PS (SI), Y8, Y0
	VFMADD231PS (SI)(R8*1), Y8, Y1
	VFMADD231PS (SI)(R8*2), Y8, Y2
	VFMADD231PS (SI)(R9*1), Y8, Y3
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  d4loop

d4done:
	HSUM4Y(0)
	VZEROUPPER
	RET

// func axpys64F32(out *float32, p *float32, v *float32, stride int, n int)
//
// out[c] += Σ_{j<n} p[j]·v[j·stride/4 + c] for c in 0..63 (AVX2+FMA): the
// attention-weighted sum of n value rows, the 64 outputs held in eight
// registers while the rows stream past.
TEXT ·axpys64F32(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DX
	MOVQ p+8(FP), DI
	MOVQ v+16(FP), SI
	MOVQ stride+24(FP), R8
	MOVQ n+32(FP), CX
	VMOVUPS (DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS 64(DX), Y2
	VMOVUPS 96(DX), Y3
	VMOVUPS 128(DX), Y4
	VMOVUPS 160(DX), Y5
	VMOVUPS 192(DX), Y6
	VMOVUPS 224(DX), Y7
	TESTQ CX, CX
	JZ    axsdone

axsloop:
	VBROADCASTSS (DI), Y8
	VFMADD231PS (SI), Y8, Y0
	VFMADD231PS 32(SI), Y8, Y1
	VFMADD231PS 64(SI), Y8, Y2
	VFMADD231PS 96(SI), Y8, Y3
	VFMADD231PS 128(SI), Y8, Y4
	VFMADD231PS 160(SI), Y8, Y5
	VFMADD231PS 192(SI), Y8, Y6
	VFMADD231PS 224(SI), Y8, Y7
	ADDQ $4, DI
	ADDQ R8, SI
	DECQ CX
	JNZ  axsloop

axsdone:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	VZEROUPPER
	RET

// Constants of expf (Cephes): clamp range, log2(e), ln2 split in two, the
// degree-5 polynomial for e^r on |r| ≤ ln2/2, and 1.0.
DATA expc<>+0(SB)/4, $0x42b0c0a5  // 88.3762626647949
DATA expc<>+4(SB)/4, $0xc2aeac50  // -87.3365478515625
DATA expc<>+8(SB)/4, $0x3fb8aa3b  // log2(e)
DATA expc<>+12(SB)/4, $0x3f318000 // 0.693359375
DATA expc<>+16(SB)/4, $0xb95e8083 // -2.12194440e-4
DATA expc<>+20(SB)/4, $0x39506967 // 1.9875691500e-4
DATA expc<>+24(SB)/4, $0x3ab743ce // 1.3981999507e-3
DATA expc<>+28(SB)/4, $0x3c088908 // 8.3334519073e-3
DATA expc<>+32(SB)/4, $0x3d2aa9c1 // 4.1665795894e-2
DATA expc<>+36(SB)/4, $0x3e2aaaaa // 1.6666665459e-1
DATA expc<>+40(SB)/4, $0x3f000000 // 5.0000001201e-1
DATA expc<>+44(SB)/4, $0x3f800000 // 1.0
GLOBL expc<>(SB), RODATA|NOPTR, $48

// EXPCONST loads the expf constants into Y4..Y15.
#define EXPCONST \
	VBROADCASTSS expc<>+0(SB), Y4; \
	VBROADCASTSS expc<>+4(SB), Y5; \
	VBROADCASTSS expc<>+8(SB), Y6; \
	VBROADCASTSS expc<>+12(SB), Y7; \
	VBROADCASTSS expc<>+16(SB), Y8; \
	VBROADCASTSS expc<>+20(SB), Y9; \
	VBROADCASTSS expc<>+24(SB), Y10; \
	VBROADCASTSS expc<>+28(SB), Y11; \
	VBROADCASTSS expc<>+32(SB), Y12; \
	VBROADCASTSS expc<>+36(SB), Y13; \
	VBROADCASTSS expc<>+40(SB), Y14; \
	VBROADCASTSS expc<>+44(SB), Y15

// EXPY replaces Y0 with e^Y0 lane-wise (about 1 ulp; 0 below -87.34,
// which covers -Inf). Needs EXPCONST; clobbers Y1..Y3.
#define EXPY \
	VCMPPS $0x0d, Y5, Y0, Y3; \
	VMINPS Y4, Y0, Y0; \
	VMAXPS Y5, Y0, Y0; \
	VMULPS Y6, Y0, Y1; \
	VROUNDPS $0, Y1, Y1; \
	VFNMADD231PS Y7, Y1, Y0; \
	VFNMADD231PS Y8, Y1, Y0; \
	VMOVAPS Y9, Y2; \
	VFMADD213PS Y10, Y0, Y2; \
	VFMADD213PS Y11, Y0, Y2; \
	VFMADD213PS Y12, Y0, Y2; \
	VFMADD213PS Y13, Y0, Y2; \
	VFMADD213PS Y14, Y0, Y2; \
	VMULPS Y0, Y2, Y2; \
	VMULPS Y0, Y2, Y2; \
	VADDPS Y0, Y2, Y2; \
	VADDPS Y15, Y2, Y2; \
	VCVTPS2DQ Y1, Y1; \
	VPSLLD $23, Y1, Y1; \
	VPADDD Y15, Y1, Y1; \
	VMULPS Y1, Y2, Y0; \
	VANDPS Y3, Y0, Y0

// func expSubF32AVX2(x *float32, n8 int, sub float32)
//
// x[i] = e^(x[i]-sub) for i < 8·n8.
TEXT ·expSubF32AVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n8+8(FP), CX
	EXPCONST
	TESTQ CX, CX
	JZ    expdone

exploop:
	VMOVUPS (SI), Y0
	VBROADCASTSS sub+16(FP), Y1
	VSUBPS Y1, Y0, Y0
	EXPY
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ  exploop

expdone:
	VZEROUPPER
	RET

// func siluMulAVX2(gate, up *float32, n8 int)
//
// gate[i] = gate[i] / (1 + e^-gate[i]) · up[i] for i < 8·n8.
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-24
	MOVQ gate+0(FP), DI
	MOVQ up+8(FP), SI
	MOVQ n8+16(FP), CX
	EXPCONST
	TESTQ CX, CX
	JZ    siludone

siluloop:
	VXORPS Y1, Y1, Y1
	VMOVUPS (DI), Y0
	VSUBPS Y0, Y1, Y0
	EXPY
	VADDPS Y15, Y0, Y0
	VMOVUPS (DI), Y1
	VDIVPS Y0, Y1, Y1
	VMULPS (SI), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	DECQ CX
	JNZ  siluloop

siludone:
	VZEROUPPER
	RET

// func dot4x4BF16F32x16(w *uint16, wstride int, x *float32, xstride int, n16 int, out *[16]float32)
//
// out[4t+i] = Σ_{k<16·n16} w[i·wstride/2 + k]·x[t·xstride/4 + k] for rows i
// and tokens t in 0..3 (AVX-512F): each weight vector is widened to
// float32 once and used for four tokens.
TEXT ·dot4x4BF16F32x16(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ x+16(FP), DI
	MOVQ xstride+24(FP), R11
	MOVQ n16+32(FP), CX
	MOVQ out+40(FP), DX
	LEAQ (R8)(R8*2), R9
	LEAQ (R11)(R11*2), R12
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	TESTQ CX, CX
	JZ    f44done

f44loop:
	VPMOVZXWD (SI), Z16
	VPMOVZXWD (SI)(R8*1), Z17
	VPMOVZXWD (SI)(R8*2), Z18
	VPMOVZXWD (SI)(R9*1), Z19
	VPSLLD    $16, Z16, Z16
	VPSLLD    $16, Z17, Z17
	VPSLLD    $16, Z18, Z18
	VPSLLD    $16, Z19, Z19

	VMOVUPS (DI), Z20
	VFMADD231PS Z20, Z16, Z0
	VFMADD231PS Z20, Z17, Z1
	VFMADD231PS Z20, Z18, Z2
	VFMADD231PS Z20, Z19, Z3
	VMOVUPS (DI)(R11*1), Z21
	VFMADD231PS Z21, Z16, Z4
	VFMADD231PS Z21, Z17, Z5
	VFMADD231PS Z21, Z18, Z6
	VFMADD231PS Z21, Z19, Z7
	VMOVUPS (DI)(R11*2), Z22
	VFMADD231PS Z22, Z16, Z8
	VFMADD231PS Z22, Z17, Z9
	VFMADD231PS Z22, Z18, Z10
	VFMADD231PS Z22, Z19, Z11
	VMOVUPS (DI)(R12*1), Z23
	VFMADD231PS Z23, Z16, Z12
	VFMADD231PS Z23, Z17, Z13
	VFMADD231PS Z23, Z18, Z14
	VFMADD231PS Z23, Z19, Z15

	ADDQ $32, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  f44loop

f44done:
	HSUM4Z(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3, 0)
	HSUM4Z(Z4, Z5, Z6, Z7, Y4, Y5, Y6, Y7, 16)
	HSUM4Z(Z8, Z9, Z10, Z11, Y8, Y9, Y10, Y11, 32)
	HSUM4Z(Z12, Z13, Z14, Z15, Y12, Y13, Y14, Y15, 48)
	VZEROUPPER
	RET

// func spinPause()
//
// A short busy-wait hint (PAUSE) for spin loops: it frees execution
// resources for the sibling hyperthread and saves power while polling.
TEXT ·spinPause(SB), NOSPLIT, $0-0
	PAUSE
	RET

// func dot4x2BF16F32x8(w *uint16, wstride int, x *float32, xstride int, n8 int, out *[8]float32)
//
// out[4t+i] = Σ_{k<8·n8} w[i·wstride/2 + k]·x[t·xstride/4 + k] for rows i in
// 0..3 and tokens t in 0..1 (AVX2+FMA): each widened weight vector serves
// two tokens.
TEXT ·dot4x2BF16F32x8(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ x+16(FP), DI
	MOVQ xstride+24(FP), R11
	MOVQ n8+32(FP), CX
	MOVQ out+40(FP), DX
	LEAQ (R8)(R8*2), R9
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	TESTQ CX, CX
	JZ    f42done

f42loop:
	VPMOVZXWD (SI), Y8
	VPMOVZXWD (SI)(R8*1), Y9
	VPMOVZXWD (SI)(R8*2), Y10
	VPMOVZXWD (SI)(R9*1), Y11
	VPSLLD    $16, Y8, Y8
	VPSLLD    $16, Y9, Y9
	VPSLLD    $16, Y10, Y10
	VPSLLD    $16, Y11, Y11
	VMOVUPS   (DI), Y12
	VMOVUPS   (DI)(R11*1), Y13
	VFMADD231PS Y12, Y8, Y0
	VFMADD231PS Y12, Y9, Y1
	VFMADD231PS Y12, Y10, Y2
	VFMADD231PS Y12, Y11, Y3
	VFMADD231PS Y13, Y8, Y4
	VFMADD231PS Y13, Y9, Y5
	VFMADD231PS Y13, Y10, Y6
	VFMADD231PS Y13, Y11, Y7
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  f42loop

f42done:
	HSUM4Y(0)
	VMOVAPS Y4, Y0
	VMOVAPS Y5, Y1
	VMOVAPS Y6, Y2
	VMOVAPS Y7, Y3
	HSUM4Y(16)
	VZEROUPPER
	RET

//go:build amd64 && !purego

#include "textflag.h"

// AVX2+FMA row kernels for LayerNorm and softmax. Each processes n elements,
// n a multiple of 8; the Go wrappers in vec.go handle the tail.

// HSUM reduces the 8 lanes of Y0 into the low lane of X0 (pairwise, fixed
// order) and clears the upper halves.
#define HSUM \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS  X1, X0, X0 \
	VHADDPS X0, X0, X0 \
	VHADDPS X0, X0, X0 \
	VZEROUPPER

// func sumAVX2(x *float32, n int) float32
TEXT ·sumAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPS Y0, Y0, Y0
	SHRQ $3, CX
	JZ   sum_done
sum_loop:
	VADDPS (SI), Y0, Y0
	ADDQ $32, SI
	DECQ CX
	JNZ  sum_loop
sum_done:
	HSUM
	MOVSS X0, ret+16(FP)
	RET

// func sumSqDevAVX2(x *float32, n int, m float32) float32
TEXT ·sumSqDevAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y2
	VXORPS Y0, Y0, Y0
	SHRQ $3, CX
	JZ   ssd_done
ssd_loop:
	VMOVUPS (SI), Y1
	VSUBPS  Y2, Y1, Y1
	VFMADD231PS Y1, Y1, Y0
	ADDQ $32, SI
	DECQ CX
	JNZ  ssd_loop
ssd_done:
	HSUM
	MOVSS X0, ret+24(FP)
	RET

// func maxAVX2(x *float32, n int) float32   (n >= 8)
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	SHRQ $3, CX
	DECQ CX
	JZ   max_done
max_loop:
	ADDQ $32, SI
	VMAXPS (SI), Y0, Y0
	DECQ CX
	JNZ  max_loop
max_done:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS  X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS  X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS  X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+16(FP)
	RET

// func scaleAVX2(x *float32, n int, a float32)   x[i] *= a
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS a+16(FP), Y1
	SHRQ $3, CX
	JZ   scale_done
scale_loop:
	VMULPS  (SI), Y1, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ  scale_loop
scale_done:
	VZEROUPPER
	RET

// func dotAVX2(a, b *float32, n int) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	SHRQ $3, CX
	JZ   dot_done
dot_loop:
	VMOVUPS (SI), Y1
	VFMADD231PS (DI), Y1, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  dot_loop
dot_done:
	HSUM
	MOVSS X0, ret+24(FP)
	RET

// func softmaxBwdAVX2(dp, p *float32, n int, dot float32)   dp[i] = p[i]*(dp[i]-dot)
TEXT ·softmaxBwdAVX2(SB), NOSPLIT, $0-28
	MOVQ dp+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS dot+24(FP), Y2
	SHRQ $3, CX
	JZ   smb_done
smb_loop:
	VMOVUPS (DI), Y0
	VSUBPS  Y2, Y0, Y0
	VMULPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	DECQ CX
	JNZ  smb_loop
smb_done:
	VZEROUPPER
	RET

// func lnNormAVX2(out, x, w, b *float32, n int, m, rs float32)
// out = (x - m)*rs*w + b
TEXT ·lnNormAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ b+24(FP), R8
	MOVQ n+32(FP), CX
	VBROADCASTSS m+40(FP), Y8
	VBROADCASTSS rs+44(FP), Y9
	SHRQ $3, CX
	JZ   lnn_done
lnn_loop:
	VMOVUPS (SI), Y0
	VSUBPS  Y8, Y0, Y0
	VMULPS  Y9, Y0, Y0
	VMOVUPS (R8), Y1
	VFMADD231PS (DX), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, R8
	DECQ CX
	JNZ  lnn_loop
lnn_done:
	VZEROUPPER
	RET

// func lnBwdSumsAVX2(d, w, x *float32, n int, m float32) (sg, sgx float32)
// sg = Σ d*w, sgx = Σ d*w*(x-m)
TEXT ·lnBwdSumsAVX2(SB), NOSPLIT, $0-48
	MOVQ d+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS m+32(FP), Y8
	VXORPS Y0, Y0, Y0
	VXORPS Y3, Y3, Y3
	SHRQ $3, CX
	JZ   lbs_done
lbs_loop:
	VMOVUPS (DI), Y1
	VMULPS  (SI), Y1, Y1
	VADDPS  Y1, Y0, Y0
	VMOVUPS (DX), Y2
	VSUBPS  Y8, Y2, Y2
	VFMADD231PS Y2, Y1, Y3
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	DECQ CX
	JNZ  lbs_loop
lbs_done:
	VEXTRACTF128 $1, Y3, X4
	VADDPS  X4, X3, X3
	VHADDPS X3, X3, X3
	VHADDPS X3, X3, X3
	HSUM
	MOVSS X0, sg+40(FP)
	MOVSS X3, sgx+44(FP)
	RET

// func lnBwdInAVX2(dx, d, w, x *float32, n int, m, rs, mg, k float32)
// dx += (d*w - mg - (x-m)*k) * rs
TEXT ·lnBwdInAVX2(SB), NOSPLIT, $0-56
	MOVQ dx+0(FP), DI
	MOVQ d+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ x+24(FP), R8
	MOVQ n+32(FP), CX
	VBROADCASTSS m+40(FP), Y8
	VBROADCASTSS rs+44(FP), Y9
	VBROADCASTSS mg+48(FP), Y10
	VBROADCASTSS k+52(FP), Y11
	SHRQ $3, CX
	JZ   lbi_done
lbi_loop:
	VMOVUPS (SI), Y0
	VMULPS  (DX), Y0, Y0
	VSUBPS  Y10, Y0, Y0
	VMOVUPS (R8), Y1
	VSUBPS  Y8, Y1, Y1
	VFNMADD231PS Y1, Y11, Y0
	VMOVUPS (DI), Y2
	VFMADD231PS Y0, Y9, Y2
	VMOVUPS Y2, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, R8
	DECQ CX
	JNZ  lbi_loop
lbi_done:
	VZEROUPPER
	RET

// func lnParamAVX2(gw, gb, d, x *float32, n int, m, rs float32)
// gw += d*(x-m)*rs, gb += d
TEXT ·lnParamAVX2(SB), NOSPLIT, $0-48
	MOVQ gw+0(FP), DI
	MOVQ gb+8(FP), SI
	MOVQ d+16(FP), DX
	MOVQ x+24(FP), R8
	MOVQ n+32(FP), CX
	VBROADCASTSS m+40(FP), Y8
	VBROADCASTSS rs+44(FP), Y9
	SHRQ $3, CX
	JZ   lp_done
lp_loop:
	VMOVUPS (DX), Y0
	VMOVUPS (R8), Y1
	VSUBPS  Y8, Y1, Y1
	VMULPS  Y9, Y1, Y1
	VMOVUPS (DI), Y2
	VFMADD231PS Y1, Y0, Y2
	VMOVUPS Y2, (DI)
	VADDPS  (SI), Y0, Y3
	VMOVUPS Y3, (SI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, R8
	DECQ CX
	JNZ  lp_loop
lp_done:
	VZEROUPPER
	RET

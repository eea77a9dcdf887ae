//go:build amd64 && !purego

#include "textflag.h"

// AVX2+FMA kernels for the hot loops of Weigher.Weights; see kernels_amd64.go
// for their contracts and kernels.go for the pure-Go code they replace.
// Go assembler operand order is the reverse of Intel's: "VSUBPD A, B, C"
// computes C = B - A, "VFMADD231PD A, B, C" computes C = B*A + C,
// "VFMADD213PD A, B, C" computes C = B*C + A.

// expc<> holds the constants of EXP4, each broadcast to 4 float64 lanes so
// that it can be a 32-byte memory operand. The polynomial coefficients are
// the Taylor coefficients 1/k! of e^t, correctly rounded.
// +0: 1/ln2
DATA expc<>+0(SB)/8, $0x3ff71547652b82fe
DATA expc<>+8(SB)/8, $0x3ff71547652b82fe
DATA expc<>+16(SB)/8, $0x3ff71547652b82fe
DATA expc<>+24(SB)/8, $0x3ff71547652b82fe
// +32: S = 1.5*2^52
DATA expc<>+32(SB)/8, $0x4338000000000000
DATA expc<>+40(SB)/8, $0x4338000000000000
DATA expc<>+48(SB)/8, $0x4338000000000000
DATA expc<>+56(SB)/8, $0x4338000000000000
// +64: ln2hi
DATA expc<>+64(SB)/8, $0x3fe62e42fee00000
DATA expc<>+72(SB)/8, $0x3fe62e42fee00000
DATA expc<>+80(SB)/8, $0x3fe62e42fee00000
DATA expc<>+88(SB)/8, $0x3fe62e42fee00000
// +96: ln2lo
DATA expc<>+96(SB)/8, $0x3dea39ef35793c76
DATA expc<>+104(SB)/8, $0x3dea39ef35793c76
DATA expc<>+112(SB)/8, $0x3dea39ef35793c76
DATA expc<>+120(SB)/8, $0x3dea39ef35793c76
// +128: expMin = -707
DATA expc<>+128(SB)/8, $0xc086180000000000
DATA expc<>+136(SB)/8, $0xc086180000000000
DATA expc<>+144(SB)/8, $0xc086180000000000
DATA expc<>+152(SB)/8, $0xc086180000000000
// +160: 1.0
DATA expc<>+160(SB)/8, $0x3ff0000000000000
DATA expc<>+168(SB)/8, $0x3ff0000000000000
DATA expc<>+176(SB)/8, $0x3ff0000000000000
DATA expc<>+184(SB)/8, $0x3ff0000000000000
// +192: abs mask
DATA expc<>+192(SB)/8, $0x7fffffffffffffff
DATA expc<>+200(SB)/8, $0x7fffffffffffffff
DATA expc<>+208(SB)/8, $0x7fffffffffffffff
DATA expc<>+216(SB)/8, $0x7fffffffffffffff
// +224: 1/13!
DATA expc<>+224(SB)/8, $0x3de6124613a86d09
DATA expc<>+232(SB)/8, $0x3de6124613a86d09
DATA expc<>+240(SB)/8, $0x3de6124613a86d09
DATA expc<>+248(SB)/8, $0x3de6124613a86d09
// +256: 1/12!
DATA expc<>+256(SB)/8, $0x3e21eed8eff8d898
DATA expc<>+264(SB)/8, $0x3e21eed8eff8d898
DATA expc<>+272(SB)/8, $0x3e21eed8eff8d898
DATA expc<>+280(SB)/8, $0x3e21eed8eff8d898
// +288: 1/11!
DATA expc<>+288(SB)/8, $0x3e5ae64567f544e4
DATA expc<>+296(SB)/8, $0x3e5ae64567f544e4
DATA expc<>+304(SB)/8, $0x3e5ae64567f544e4
DATA expc<>+312(SB)/8, $0x3e5ae64567f544e4
// +320: 1/10!
DATA expc<>+320(SB)/8, $0x3e927e4fb7789f5c
DATA expc<>+328(SB)/8, $0x3e927e4fb7789f5c
DATA expc<>+336(SB)/8, $0x3e927e4fb7789f5c
DATA expc<>+344(SB)/8, $0x3e927e4fb7789f5c
// +352: 1/9!
DATA expc<>+352(SB)/8, $0x3ec71de3a556c734
DATA expc<>+360(SB)/8, $0x3ec71de3a556c734
DATA expc<>+368(SB)/8, $0x3ec71de3a556c734
DATA expc<>+376(SB)/8, $0x3ec71de3a556c734
// +384: 1/8!
DATA expc<>+384(SB)/8, $0x3efa01a01a01a01a
DATA expc<>+392(SB)/8, $0x3efa01a01a01a01a
DATA expc<>+400(SB)/8, $0x3efa01a01a01a01a
DATA expc<>+408(SB)/8, $0x3efa01a01a01a01a
// +416: 1/7!
DATA expc<>+416(SB)/8, $0x3f2a01a01a01a01a
DATA expc<>+424(SB)/8, $0x3f2a01a01a01a01a
DATA expc<>+432(SB)/8, $0x3f2a01a01a01a01a
DATA expc<>+440(SB)/8, $0x3f2a01a01a01a01a
// +448: 1/6!
DATA expc<>+448(SB)/8, $0x3f56c16c16c16c17
DATA expc<>+456(SB)/8, $0x3f56c16c16c16c17
DATA expc<>+464(SB)/8, $0x3f56c16c16c16c17
DATA expc<>+472(SB)/8, $0x3f56c16c16c16c17
// +480: 1/5!
DATA expc<>+480(SB)/8, $0x3f81111111111111
DATA expc<>+488(SB)/8, $0x3f81111111111111
DATA expc<>+496(SB)/8, $0x3f81111111111111
DATA expc<>+504(SB)/8, $0x3f81111111111111
// +512: 1/4!
DATA expc<>+512(SB)/8, $0x3fa5555555555555
DATA expc<>+520(SB)/8, $0x3fa5555555555555
DATA expc<>+528(SB)/8, $0x3fa5555555555555
DATA expc<>+536(SB)/8, $0x3fa5555555555555
// +544: 1/3!
DATA expc<>+544(SB)/8, $0x3fc5555555555555
DATA expc<>+552(SB)/8, $0x3fc5555555555555
DATA expc<>+560(SB)/8, $0x3fc5555555555555
DATA expc<>+568(SB)/8, $0x3fc5555555555555
// +576: 1/2!
DATA expc<>+576(SB)/8, $0x3fe0000000000000
DATA expc<>+584(SB)/8, $0x3fe0000000000000
DATA expc<>+592(SB)/8, $0x3fe0000000000000
DATA expc<>+600(SB)/8, $0x3fe0000000000000
// +608: 1/1!
DATA expc<>+608(SB)/8, $0x3ff0000000000000
DATA expc<>+616(SB)/8, $0x3ff0000000000000
DATA expc<>+624(SB)/8, $0x3ff0000000000000
DATA expc<>+632(SB)/8, $0x3ff0000000000000
// +640: 1/0!
DATA expc<>+640(SB)/8, $0x3ff0000000000000
DATA expc<>+648(SB)/8, $0x3ff0000000000000
DATA expc<>+656(SB)/8, $0x3ff0000000000000
DATA expc<>+664(SB)/8, $0x3ff0000000000000
GLOBL expc<>(SB), RODATA|NOPTR, $672

// EXP4 sets Y14 = e^Y7 in each of the 4 float64 lanes, for Y7 <= ~0 (0 when
// Y7 < -707); it keeps Y7, clobbers Y8-Y15 and reads only expc<>.
//
// Method: z = n·ln2 + t with n = round(z/ln2) and |t| <= ln2/2; then
// e^z = 2^n · p(t), p the degree-13 Taylor polynomial of e^t evaluated by
// Estrin's scheme (latency ~5 FMAs instead of Horner's 13; the loop is
// latency-bound), and 2^n applied by adding n to the exponent field of p
// (p is in [0.70, 1.42] and n >= -1020 for z >= -707, so the result is a
// normal number). With c_k = 1/k!, line by line:
//   Y8  = S                       S = 1.5·2^52
//   Y8  = z·(1/ln2) + S           one rounding: Y8 = S + n exactly, so its low
//                                 mantissa bits hold n (two's complement)
//   Y12 = Y8 - S = n              exact
//   Y9  = z
//   Y9  = Y9 - n·ln2hi            ln2hi has 32 significant bits: n·ln2hi is
//                                 exact for |n| < 2^21, and the FMA rounds once
//   Y9  = Y9 - n·ln2lo            = t; ln2hi + ln2lo = ln2 to ~2^-90
//   Y10 = t², Y11 = t⁴
//   Y12 = c13·t + c12; Y13 = c11·t + c10; Y14 = c9·t + c8
//   Y13 = Y13·t² + Y14            c8 + ... + c11·t³
//   Y13 = Y12·t⁴ + Y13            hi = c8 + ... + c13·t⁵
//   Y12 = c7·t + c6; Y14 = c5·t + c4
//   Y12 = Y12·t² + Y14            c4 + ... + c7·t³
//   Y14 = c3·t + c2; Y15 = t + 1 (= c1·t + c0)
//   Y14 = Y14·t² + Y15            c0 + ... + c3·t³
//   Y14 = Y12·t⁴ + Y14            lo = c0 + ... + c7·t⁷
//   Y11 = t⁸
//   Y14 = hi·t⁸ + lo              = p(t)
//   Y8  = Y8 << 52                = n << 52 (the bits of S shift out)
//   Y14 = Y14 + Y8 (int64 add)    = p·2^n
//   Y8  = (z < -707) ? all ones : 0
//   Y14 = ~Y8 & Y14               0 below the domain (as expNeg)
#define EXP4 \
	VMOVUPD      expc<>+32(SB), Y8 \
	VFMADD231PD  expc<>+0(SB), Y7, Y8 \
	VSUBPD       expc<>+32(SB), Y8, Y12 \
	VMOVAPD      Y7, Y9 \
	VFNMADD231PD expc<>+64(SB), Y12, Y9 \
	VFNMADD231PD expc<>+96(SB), Y12, Y9 \
	VMULPD       Y9, Y9, Y10 \
	VMULPD       Y10, Y10, Y11 \
	VMOVUPD      expc<>+224(SB), Y12 \
	VFMADD213PD  expc<>+256(SB), Y9, Y12 \
	VMOVUPD      expc<>+288(SB), Y13 \
	VFMADD213PD  expc<>+320(SB), Y9, Y13 \
	VMOVUPD      expc<>+352(SB), Y14 \
	VFMADD213PD  expc<>+384(SB), Y9, Y14 \
	VFMADD213PD  Y14, Y10, Y13 \
	VFMADD231PD  Y12, Y11, Y13 \
	VMOVUPD      expc<>+416(SB), Y12 \
	VFMADD213PD  expc<>+448(SB), Y9, Y12 \
	VMOVUPD      expc<>+480(SB), Y14 \
	VFMADD213PD  expc<>+512(SB), Y9, Y14 \
	VFMADD213PD  Y14, Y10, Y12 \
	VMOVUPD      expc<>+544(SB), Y14 \
	VFMADD213PD  expc<>+576(SB), Y9, Y14 \
	VADDPD       expc<>+640(SB), Y9, Y15 \
	VFMADD213PD  Y15, Y10, Y14 \
	VFMADD231PD  Y12, Y11, Y14 \
	VMULPD       Y11, Y11, Y11 \
	VFMADD231PD  Y13, Y11, Y14 \
	VPSLLQ       $52, Y8, Y8 \
	VPADDQ       Y8, Y14, Y14 \
	VCMPPD       $1, expc<>+128(SB), Y7, Y8 \
	VANDNPD      Y14, Y8, Y14

// func expVecAVX2(dst, x []float64)
// dst[i] = e^x[i] (EXP4) for i < len(x) rounded down to a multiple of 4.
TEXT ·expVecAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	SHRQ $2, CX               // groups of 4
	JZ   expvec_done

expvec_loop:
	VMOVUPD (SI), Y7          // z
	EXP4                      // Y14 = e^z
	VMOVUPD Y14, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     expvec_loop

expvec_done:
	VZEROUPPER
	RET

// func expScoresAVX2(kind int, dst, ls []float32, p *expParams, a *expAcc)
// Pass 2 of the fast path, 4 samples at a time, for len(ls) rounded down
// to a multiple of 4. With q = l - lmin and x = q·A + B (one FMA), the
// exponent z of each loss is (the shape and p come from the strategy, see expKernelParams):
//   shapeMin  (1) z = min(x, C)           (linupper, dro-kl; C = 0)
//   shapeQuad (2) z = C - x·(x·invR)      (quadratic: x = u = x/δ)
//   shapeAbs  (3) z = min(|x| + C, 0)     (extremes)
// then e = e^z (EXP4), dst = float32(e), and the lane sums a.s += e,
// a.s2 += e·e, a.el += e·z, a.sl += e·l, a.zmax = max(a.zmax, z),
// a.zmin = min(a.zmin, z).
TEXT ·expScoresAVX2(SB), NOSPLIT, $0-72
	MOVQ kind+0(FP), DX
	MOVQ dst_base+8(FP), DI
	MOVQ ls_base+32(FP), SI
	MOVQ ls_len+40(FP), CX
	MOVQ p+56(FP), AX         // lmin +0, A +32, B +64, C +96, invR +128
	MOVQ a+64(FP), BX
	VMOVUPD 0(BX), Y0         // Σe
	VMOVUPD 32(BX), Y1        // Σe²
	VMOVUPD 64(BX), Y2        // Σe·z
	VMOVUPD 96(BX), Y3        // Σe·l
	VMOVUPD 128(BX), Y4       // max z
	VMOVUPD 160(BX), Y5       // min z
	SHRQ $2, CX               // groups of 4
	JZ   scores_done

scores_loop:
	VCVTPS2PD   (SI), Y6      // l = float64(losses[i..i+3])
	VSUBPD      0(AX), Y6, Y7 // q = l - lmin (exact: both are float32 values)
	VMOVUPD     64(AX), Y8    // B
	VFMADD231PD 32(AX), Y7, Y8 // x = q·A + B
	CMPQ        DX, $1        // shapeMin?
	JNE         scores_notlin
	VMOVUPD     96(AX), Y9    // C
	VMINPD      Y8, Y9, Y7    // z = (C < x) ? C : x
	JMP         scores_exp

scores_notlin:
	CMPQ         DX, $2       // shapeQuad?
	JNE          scores_notquad
	VMULPD       128(AX), Y8, Y9 // v = u·invR
	VMOVUPD      96(AX), Y7   // C
	VFNMADD231PD Y9, Y8, Y7   // z = C - u·v
	JMP          scores_exp

scores_notquad:
	VANDPD expc<>+192(SB), Y8, Y8 // shapeAbs: |x|
	VADDPD 96(AX), Y8, Y8     // |x| + C
	VXORPD Y9, Y9, Y9         // 0
	VMINPD Y8, Y9, Y7         // z = (0 < |x| + C) ? 0 : |x| + C

scores_exp:
	EXP4                      // Y14 = e = e^z
	VADDPD      Y14, Y0, Y0   // Σe   += e
	VFMADD231PD Y14, Y14, Y1  // Σe²  += e·e
	VFMADD231PD Y14, Y7, Y2   // Σe·z += e·z
	VFMADD231PD Y14, Y6, Y3   // Σe·l += e·l
	VMAXPD      Y7, Y4, Y4    // max z
	VMINPD      Y7, Y5, Y5    // min z
	VCVTPD2PSY  Y14, X14      // float32(e), round to nearest
	VMOVUPS     X14, (DI)     // dst[i..i+3]
	ADDQ        $16, SI
	ADDQ        $16, DI
	DECQ        CX
	JNZ         scores_loop

scores_done:
	VMOVUPD Y0, 0(BX)
	VMOVUPD Y1, 32(BX)
	VMOVUPD Y2, 64(BX)
	VMOVUPD Y3, 96(BX)
	VMOVUPD Y4, 128(BX)
	VMOVUPD Y5, 160(BX)
	VZEROUPPER
	RET

// func scanAVX2(ls []float32, a *scanAcc)
// Pass 1's fast loop, 8 losses at a time, for len(ls) rounded down to a
// multiple of 8: a.mn, a.mx = lane-wise min and max (8 float32 lanes), and
// a.s[k] += float64(ls[i]) for i ≡ k (mod 4), in index order: the same
// four chains, added in the same order, as the pure-Go loop in scan.
TEXT ·scanAVX2(SB), NOSPLIT, $0-32
	MOVQ ls_base+0(FP), SI
	MOVQ ls_len+8(FP), CX
	MOVQ a+24(FP), BX
	VMOVUPS 0(BX), Y0         // min lanes
	VMOVUPS 32(BX), Y1        // max lanes
	VMOVUPD 64(BX), Y2        // the four sum chains
	SHRQ $3, CX               // groups of 8
	JZ   scan_done

scan_loop:
	VMOVUPS   (SI), Y3        // ls[i..i+7]
	VMINPS    Y3, Y0, Y0
	VMAXPS    Y3, Y1, Y1
	VCVTPS2PD (SI), Y4        // float64(ls[i..i+3])
	VCVTPS2PD 16(SI), Y5      // float64(ls[i+4..i+7])
	VADDPD    Y4, Y2, Y2      // chain k += ls[i+k]
	VADDPD    Y5, Y2, Y2      // chain k += ls[i+4+k]
	ADDQ      $32, SI
	DECQ      CX
	JNZ       scan_loop

scan_done:
	VMOVUPS Y0, 0(BX)
	VMOVUPS Y1, 32(BX)
	VMOVUPD Y2, 64(BX)
	VZEROUPPER
	RET

// func scaleAVX2(dst []float32, f float64)
// dst[i] = float32(float64(dst[i])·f) for len(dst) rounded down to a
// multiple of 8: pass 3, exactly as the pure-Go loop rounds it.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-32
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	VBROADCASTSD f+24(FP), Y15
	SHRQ         $3, CX
	JZ           scale_done

scale_loop:
	VCVTPS2PD  (DI), Y0
	VCVTPS2PD  16(DI), Y1
	VMULPD     Y15, Y0, Y0
	VMULPD     Y15, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1
	VMOVUPS    X0, (DI)
	VMOVUPS    X1, 16(DI)
	ADDQ       $32, DI
	DECQ       CX
	JNZ        scale_loop

scale_done:
	VZEROUPPER
	RET

// Host emulation of the fused W2A8 kernel (csrc/cuda/a8_linear.cu) for tests/test_a8_emulation.py: the kernel's
// shared-memory staging, its CTA of `warps` warps over warps / ks row tiles with ks warps splitting each tile's K,
// each of the 32 lanes' fragments (the same functions as the kernel: csrc/cuda/a8_fragments.h), mma.sync m16n8k32
// (u8 x s8 -> s32) emulated from the PTX ISA's fragment layout, the sets' shifts, the CTA's sum and the epilogue.  Not emulated: the kernel's 3-step register rotation of the
// weight loads (each step here reads its own words) and the hardware itself.
//
//   a8_emulate IN OUT
// IN: int64 planes, M, N, K, wpr, has_u, has_b, s_numel, u_numel, warps, ks, chunk_rows, digits; int8 xq (M*K);
//     uint32 packed (N*wpr);
//     float32 xs (M), s (s_numel), u (u_numel if has_u), b (N if has_b); with digits (the digits backend: xq's rows
//     4 m .. 4 m + 3 the digits of x row m) int32 e (M/4) after them.
// OUT: int32 sums (M*N: sum_k xq * stored code), int32 X (M), float32 y (M*N; with digits (M/4)*N).
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda/a8_fragments.h"

using namespace bitmm;

namespace {


template <typename T>
void read_n(FILE* f, T* p, size_t n) {
  if (n != 0 && std::fread(p, sizeof(T), n, f) != n) {
    std::fprintf(stderr, "short input\n");
    std::exit(2);
  }
}

// D (16 x 8) += A (16 x 32, u8) B (32 x 8, s8) from the 32 lanes' fragments, D scattered back to the lanes' c0..c3.
void mma_emulate(const uint32_t (&a)[32][4], const uint32_t (&b)[32][2], int (&c)[32][4]) {
  int A[16][32], B[32][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    for (int j = 0; j < 4; ++j) {
      A[g][4 * t + j] = (a[lane][0] >> (8 * j)) & 0xff;
      A[g + 8][4 * t + j] = (a[lane][1] >> (8 * j)) & 0xff;
      A[g][16 + 4 * t + j] = (a[lane][2] >> (8 * j)) & 0xff;
      A[g + 8][16 + 4 * t + j] = (a[lane][3] >> (8 * j)) & 0xff;
      B[4 * t + j][g] = static_cast<int8_t>((b[lane][0] >> (8 * j)) & 0xff);
      B[16 + 4 * t + j][g] = static_cast<int8_t>((b[lane][1] >> (8 * j)) & 0xff);
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    for (int r = 0; r < 4; ++r) {
      const int row = g + 8 * (r >> 1), col = 2 * t + (r & 1);
      long long d = c[lane][r];
      for (int k = 0; k < 32; ++k) d += static_cast<long long>(A[row][k]) * B[k][col];
      assert(d >= INT32_MIN && d <= INT32_MAX);  // the int32 accumulator cannot overflow (a8_fragments.h bound)
      c[lane][r] = static_cast<int>(d);
    }
  }
}

struct Epilogue {  // the float inputs: x_scale (M,), s (s_numel), u / b or empty; e (M / 4) or empty
  const std::vector<float> &xs, &s, &u, &b;
  int shift;
  const std::vector<int>& e;
};

template <int P>
void run(int64_t Mall, int64_t N, int64_t K, int64_t wpr, int warps, int ks_count, int chunk_rows,
         const std::vector<int8_t>& xq_all, const std::vector<uint32_t>& w, const Epilogue& e, std::vector<int>& sums,
         std::vector<int>& Xout, std::vector<float>& y) {
  const int RT = warps / ks_count;  // row tiles per CTA
  using L = a8::Layout<P>;
  const int CM = chunk_rows > 8 ? 2 : 1;  // (the launcher's kCM)
  const int row_u4 = static_cast<int>(wpr / 4), steps = (row_u4 + 3) / 4;
  const int64_t padded_k = wpr / P * 32, nblocks = padded_k / 32;
  const int64_t chunks = (Mall + chunk_rows - 1) / chunk_rows, groups = (N + 16 * RT - 1) / (16 * RT);
  auto red_at = [&](int warp, int cm, int reg, int lane) {
    return CM == 1 ? a8::red_index<1>(warp, cm, reg, lane) : a8::red_index<2>(warp, cm, reg, lane);
  };
  Xout.assign(Mall, 0);
  for (int64_t cta = 0; cta < chunks * groups; ++cta) {
    int64_t chunk, group;
    a8::cta_position(cta, chunks, chunk, group);
    const int64_t m0 = chunk * chunk_rows, M = std::min<int64_t>(Mall - m0, chunk_rows);
    const int8_t* xq = xq_all.data() + m0 * K;
    // the CTA's whole shared memory as the kernel lays it out (a8::smem_layout), poisoned; the zero window zeroed
    const a8::SmemLayout sl = a8::smem_layout<P>(M, padded_k, warps, CM);
    const int64_t stride = sl.stride, zeros = sl.zeros;
    std::vector<unsigned char> smem(sl.total, 0xA5);
    std::memset(smem.data() + zeros, 0, L::kWindowBytes);
    std::vector<char> written(M * stride, 0);
    auto smem_int = [&](int64_t base, int index) -> int* {
      const int64_t off = base + 4 * static_cast<int64_t>(index);
      assert(off >= base && off + 4 <= sl.total);
      return reinterpret_cast<int*>(&smem[off]);
    };
    for (int i = 0; i < a8::kMaxChunkRows; ++i) *smem_int(sl.xsum, a8::xsum_index(i)) = 0;  // (the kernel zeroes them)
    using S = a8::Stage<P>;
    const int64_t nunits = nblocks / S::kUnitBlocks;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t u = 0; u < nunits; ++u) {
        uint32_t Pw[S::kUnitBlocks][8];
        for (int ub = 0; ub < S::kUnitBlocks; ++ub) {
          const int64_t b = u * S::kUnitBlocks + ub;
          uint32_t Xw[8];
          for (int i = 0; i < 8; ++i) {
            uint32_t v = 0;
            for (int j = 0; j < 4; ++j) {
              const int64_t k = 32 * b + 4 * i + j;
              if (k < K) v |= static_cast<uint32_t>(static_cast<uint8_t>(xq[m * K + k])) << (8 * j);
            }
            Xw[i] = v;
          }
          a8::permute_block(Xw, Pw[ub]);
        }
        // the row sum of this unit's bytes is added to its row's slot (the kernel's shared-memory atomics)
        int part = 0;
        for (int ub = 0; ub < S::kUnitBlocks; ++ub)
          for (int i = 0; i < 8; ++i) {
            uint32_t v = 0;
            for (int j = 0; j < 4; ++j) {
              const int64_t k = 32 * (u * S::kUnitBlocks + ub) + 4 * i + j;
              if (k < K) v |= static_cast<uint32_t>(static_cast<uint8_t>(xq[m * K + k])) << (8 * j);
            }
            part = a8::byte_sum(v, part);
          }
        *smem_int(sl.xsum, a8::xsum_index(static_cast<int>(m))) += part;
        for (int c = 0; c < S::kUnitChunks; ++c) {
          const int64_t off = m * stride + a8::smem_unit_offset<P>(u, c);
          assert(off >= m * stride && off + 16 <= (m + 1) * stride - a8::kRowPad);
          for (int q = 0; q < 16; ++q) assert(!written[off + q]);  // no two chunks share bytes
          std::memset(&written[off], 1, 16);
          for (int j = 0; j < 4; ++j) {
            const uint32_t wv = a8::unit_word<P>(Pw, c, j);
            std::memcpy(&smem[off + 4 * j], &wv, 4);
          }
        }
      }
    if (group == 0)
      for (int64_t m = 0; m < M; ++m)
        Xout[m0 + m] = *smem_int(sl.xsum, a8::xsum_index(static_cast<int>(m)));
    const int64_t cta_n0 = 16 * RT * group;
    for (int warp = 0; warp < warps; ++warp) {
      const int ks = warp % ks_count, rt = warp / ks_count;
      const int64_t n0 = cta_n0 + 16 * rt;
      static int acc[32][2][8][4];
      std::memset(acc, 0, sizeof(acc));
      for (int s = ks; s < steps; s += ks_count) {
        static uint32_t a[32][16][4];
        static a8::U4 ch[32][2][8];
        for (int lane = 0; lane < 32; ++lane) {
          const int g = lane >> 2, t = lane & 3;
          const int i = a8::lane_u4(s, t, row_u4);
          const uint32_t* rg = &w[std::min<int64_t>(n0 + g, N - 1) * wpr + 4 * i];
          const uint32_t* rg8 = &w[std::min<int64_t>(n0 + g + 8, N - 1) * wpr + 4 * i];
          const a8::U4 wa{rg[0], rg[1], rg[2], rg[3]}, wb{rg8[0], rg8[1], rg8[2], rg8[3]};
          uint32_t al[L::kMmas][4];
          a8::a_frags<P>(wa, wb, al);
          std::memcpy(a[lane], al, sizeof(al));
          const bool valid = a8::lane_valid(s, t, row_u4);
          for (int cm = 0; cm < CM; ++cm) {
            const int64_t base = a8::b_base<P>(s, t, 8 * cm + g, static_cast<int>(M), valid, stride, zeros);
            for (int c = 0; c < L::kChunks; ++c) {
              const int64_t off = base + 64 * c;
              assert(off >= 0 && off + 16 <= static_cast<int64_t>(smem.size()));
              if (base - 16 * t != zeros) assert(written[off] && written[off + 15]);  // staged bytes only
              std::memcpy(&ch[lane][cm][c], &smem[off], 16);
            }
          }
        }
        for (int j = 0; j < L::kMmas; ++j)
          for (int cm = 0; cm < CM; ++cm) {
            uint32_t af[32][4], bf[32][2];
            int cf[32][4];
            for (int lane = 0; lane < 32; ++lane) {
              std::memcpy(af[lane], a[lane][j], sizeof(af[lane]));
              a8::U4 chl[L::kChunks];
              for (int c = 0; c < L::kChunks; ++c) chl[c] = ch[lane][cm][c];
              a8::b_frag<P>(chl, j, bf[lane][0], bf[lane][1]);
              std::memcpy(cf[lane], acc[lane][cm][L::set_of(j)], sizeof(cf[lane]));
            }
            mma_emulate(af, bf, cf);
            for (int lane = 0; lane < 32; ++lane) std::memcpy(acc[lane][cm][L::set_of(j)], cf[lane], sizeof(cf[lane]));
          }
      }
      for (int lane = 0; lane < 32; ++lane)
        for (int cm = 0; cm < CM; ++cm)
          for (int r = 0; r < 4; ++r) {
            int v = 0;
            for (int i = 0; i < L::kSets; ++i) {
              assert(acc[lane][cm][i][r] % (1 << (L::kSetShift * i)) == 0);  // the shift is exact
              v += acc[lane][cm][i][r] >> (L::kSetShift * i);
            }
            *smem_int(sl.red, red_at(warp, cm, r, lane)) = v;
          }
    }
    for (int o = 0; o < 16 * RT * M; ++o) {
      int rc, m;
      a8::out_position(o, 16 * RT, rc, m);
      const int rr = rc & 15, tile = rc >> 4;
      const int64_t n = cta_n0 + rc;
      if (n >= N) continue;
      int cm, ln, reg;
      a8::c_position(rr, m, cm, ln, reg);
      int sum = 0;
      for (int k = 0; k < ks_count; ++k) sum += *smem_int(sl.red, red_at(tile * ks_count + k, cm, reg, ln));
      const int X = *smem_int(sl.xsum, a8::xsum_index(m));
      assert(sums[(m0 + m) * N + n] == 0x7eadbeef);  // each output written once
      sums[(m0 + m) * N + n] = sum;
      if (!e.e.empty()) continue;  // (digits: below)
      // the kernel's epilogue: x_scale of row m0 + m, s / u / b of output n
      y[(m0 + m) * N + n] = a8::epilogue(sum, X, e.shift, e.xs[m0 + m], e.s[e.s.size() == 1 ? 0 : n], !e.u.empty(),
                                         e.u.empty() ? 0.f : e.u[e.u.size() == 1 ? 0 : n], !e.b.empty(),
                                         e.b.empty() ? 0.f : e.b[n]);
    }
    if (e.e.empty()) continue;
    // the kernel's digits epilogue (a8_linear.cu, p.xe): rows 4 mx .. 4 mx + 3 of the CTA are x row m0 / 4 + mx
    assert(m0 % a8::kDigits == 0 && M % a8::kDigits == 0);
    for (int o = 0; o < 16 * RT * (M / a8::kDigits); ++o) {
      int rc, mx;
      a8::out_position(o, 16 * RT, rc, mx);
      const int rr = rc & 15, tile = rc >> 4;
      const int64_t n = cta_n0 + rc;
      if (n >= N) continue;
      int sum[a8::kDigits], X[a8::kDigits];
      for (int j = 0; j < a8::kDigits; ++j) {
        int cm, ln, reg;
        a8::c_position(rr, a8::kDigits * mx + j, cm, ln, reg);
        sum[j] = 0;
        for (int k = 0; k < ks_count; ++k) sum[j] += *smem_int(sl.red, red_at(tile * ks_count + k, cm, reg, ln));
        X[j] = *smem_int(sl.xsum, a8::xsum_index(a8::kDigits * mx + j));
      }
      int64_t T, XT;
      a8::combine_digits(sum, X, e.shift, T, XT);
      const int64_t row = m0 / a8::kDigits + mx;
      static std::vector<char> done;  // each output written once
      if (done.size() != y.size()) done.assign(y.size(), 0);
      assert(!done[row * N + n]);
      done[row * N + n] = 1;
      y[row * N + n] = a8::epilogue_digits(T, XT, e.e[row], e.s[e.s.size() == 1 ? 0 : n], !e.u.empty(),
                                           e.u.empty() ? 0.f : e.u[e.u.size() == 1 ? 0 : n], !e.b.empty(),
                                           e.b.empty() ? 0.f : e.b[n]);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  FILE* f = std::fopen(argv[1], "rb");
  if (!f) return 2;
  int64_t h[13];
  read_n(f, h, 13);
  const int64_t planes = h[0], M = h[1], N = h[2], K = h[3], wpr = h[4], has_u = h[5], has_b = h[6];
  const int64_t s_numel = h[7], u_numel = h[8];
  const int warps = static_cast<int>(h[9]), ks = static_cast<int>(h[10]), chunk_rows = static_cast<int>(h[11]);
  const bool digits = h[12] != 0;
  if (digits && (M % a8::kDigits != 0 || chunk_rows % a8::kDigits != 0)) return 2;
  if (warps > 8 || ks < 1 || warps % ks != 0 || chunk_rows < 1 || chunk_rows > a8::kMaxChunkRows) return 2;
  std::vector<int8_t> xq(M * K);
  std::vector<uint32_t> w(N * wpr);
  std::vector<float> xs(M), s(s_numel), u(has_u ? u_numel : 0), b(has_b ? N : 0);
  read_n(f, xq.data(), xq.size());
  read_n(f, w.data(), w.size());
  read_n(f, xs.data(), xs.size());
  read_n(f, s.data(), s.size());
  read_n(f, u.data(), u.size());
  read_n(f, b.data(), b.size());
  std::vector<int> ex(digits ? M / a8::kDigits : 0);
  read_n(f, ex.data(), ex.size());
  std::fclose(f);
  std::vector<int> sums(M * N, 0x7eadbeef), X;
  std::vector<float> y((digits ? M / a8::kDigits : M) * N, NAN);
  const Epilogue e{xs, s, u, b, planes == 2 ? 1 : 0, ex};
  if (planes == 2)
    run<2>(M, N, K, wpr, warps, ks, chunk_rows, xq, w, e, sums, X, y);
  else
    run<1>(M, N, K, wpr, warps, ks, chunk_rows, xq, w, e, sums, X, y);
  FILE* o = std::fopen(argv[2], "wb");
  if (!o) return 2;
  std::fwrite(sums.data(), sizeof(int), sums.size(), o);
  std::fwrite(X.data(), sizeof(int), X.size(), o);
  std::fwrite(y.data(), sizeof(float), y.size(), o);
  std::fclose(o);
  return 0;
}

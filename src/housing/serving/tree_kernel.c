/* Batches through a LightGBM model held as tables (tree_tables.py encodes them), exactly
 * as LightGBM's own predict: the same comparisons, leaves summed in tree order.
 *
 * Why tables and not the compiled if-else code (compiled.py): a batch walks each tree
 * for many rows, and if-else code pays a mispredicted branch at most levels. Here:
 *  - each feature value becomes its rank among the model's thresholds for that feature
 *    (a binary search), so `value <= threshold` is `rank <= threshold's rank`, exactly,
 *    and a row is at most 64 bytes;
 *  - trees are taken one at a time over blocks of rows, so a tree's tables stay in the
 *    L1 cache for the whole block;
 *  - with AVX-512 VBMI, one permute and one compare give all of a tree's split decisions
 *    for a row at once (a bit per split), and for trees of up to 64 leaves QuickScorer's
 *    rule finds the exit leaf with no walk at all: the leftmost leaf that no split it
 *    lies left of sends the row right (8 leaves per test);
 *  - larger trees, and CPUs without VBMI, walk 8 rows in lockstep with no branch per
 *    level (leaves point to themselves; the walk stops when all 8 rows sit on leaves).
 * Built by the system's compiler for the machine it runs on (-march=native): without
 * VBMI the walk compares ranks itself, with the same answers.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __AVX512VBMI__
#include <immintrin.h>
#endif

#define BLOCK 64 /* rows whose ranks sit in the L1 cache while every tree walks them */
#define LANES 8  /* rows walking one tree in lockstep */
#define NODES 256

typedef struct {
    int32_t n_features, n_trees;
    const double* thresholds; /* each feature's thresholds, ascending: offsets[f]..offsets[f+1] */
    const int32_t* offsets;
    const uint8_t* feature;   /* [tree][NODES] a node's feature (leaves: 0) */
    const uint8_t* rank;      /* [tree][NODES] go right when the row's rank is above it (leaves: 255) */
    const uint8_t* child;     /* [tree][NODES][2] left, right (a leaf: itself twice) */
    const double* leaf;       /* [tree][NODES / 2] by node - first_leaf, leaves left to right */
    const uint8_t* first_leaf;/* [tree] nodes below it split, the others are leaves */
    const uint8_t* depth;     /* [tree] the longest path, in levels */
    const uint64_t* left_of;  /* [tree][64] per leaf (trees of up to 64), the splits it lies left of */
} tables_t;

const char* kernel_isa(void) {
#ifdef __AVX512VBMI__
    return "avx512vbmi";
#else
    return "portable";
#endif
}

/* How many of the feature's thresholds lie below each value. NaN counts as 0.0, as
 * LightGBM does for splits without a missing-value direction (the only ones encoded). */
static void rank_row(const tables_t* t, const double* x, uint8_t* out) {
    for (int f = 0; f < t->n_features; f++) {
        double v = isnan(x[f]) ? 0.0 : x[f];
        int lo = t->offsets[f], hi = t->offsets[f + 1];
        while (lo < hi) {
            int mid = (lo + hi) >> 1;
            if (t->thresholds[mid] < v) lo = mid + 1; else hi = mid;
        }
        out[f] = (uint8_t)(lo - t->offsets[f]);
    }
}

void predict(const tables_t* t, const double* rows, int64_t n_rows, double* out) {
    uint8_t ranks[BLOCK][64] __attribute__((aligned(64)));
    double sum[BLOCK];
    for (int64_t first = 0; first < n_rows; first += BLOCK) {
        const int rows_here = (int)(n_rows - first < BLOCK ? n_rows - first : BLOCK);
        memset(ranks, 0, sizeof ranks);
        for (int r = 0; r < rows_here; r++) {
            rank_row(t, rows + (first + r) * t->n_features, ranks[r]);
            sum[r] = 0.0;
        }
        for (int k = 0; k < t->n_trees; k++) {
            const uint8_t* feature = t->feature + (size_t)k * NODES;
            const uint8_t* rank = t->rank + (size_t)k * NODES;
            const uint8_t* child = t->child + (size_t)k * NODES * 2;
            const double* leaf = t->leaf + (size_t)k * (NODES / 2);
            const unsigned first_leaf = t->first_leaf[k], depth = t->depth[k];
#ifdef __AVX512VBMI__
            const __m512i features = _mm512_loadu_si512(feature), limits = _mm512_loadu_si512(rank);
            if (first_leaf < 64) {
                /* QuickScorer (Lucchese et al., SIGIR 2015): the exit leaf is the leftmost
                 * leaf none of whose left-of splits sends the row right, 8 leaves a test */
                const uint64_t* lo = t->left_of + (size_t)k * 64;
                const __m512i l0 = _mm512_loadu_si512(lo), l1 = _mm512_loadu_si512(lo + 8),
                              l2 = _mm512_loadu_si512(lo + 16), l3 = _mm512_loadu_si512(lo + 24),
                              l4 = _mm512_loadu_si512(lo + 32), l5 = _mm512_loadu_si512(lo + 40),
                              l6 = _mm512_loadu_si512(lo + 48), l7 = _mm512_loadu_si512(lo + 56);
                const int wide = first_leaf >= 32;  /* more than 32 leaves */
                for (int r = 0; r < rows_here; r++) {
                    const __m512i mine = _mm512_permutexvar_epi8(features, _mm512_load_si512(ranks[r]));
                    const __m512i right = _mm512_set1_epi64(
                        (long long)_cvtmask64_u64(_mm512_cmpgt_epu8_mask(mine, limits)));
#define QS_LEAVES(l, shift) ((uint64_t)_cvtmask8_u32(_mm512_testn_epi64_mask(right, l)) << (shift))
                    uint64_t exits = QS_LEAVES(l0, 0) | QS_LEAVES(l1, 8) | QS_LEAVES(l2, 16) | QS_LEAVES(l3, 24);
                    if (wide) exits |= QS_LEAVES(l4, 32) | QS_LEAVES(l5, 40) | QS_LEAVES(l6, 48) | QS_LEAVES(l7, 56);
                    sum[r] += leaf[__builtin_ctzll(exits)];
                }
                continue;
            }
            uint64_t goes_right[BLOCK];
            const int by_bits = first_leaf <= 64;  /* one 64-bit word holds every decision */
            if (by_bits) {
                for (int r = 0; r < rows_here; r++) {
                    __m512i mine = _mm512_permutexvar_epi8(features, _mm512_load_si512(ranks[r]));
                    goes_right[r] = _cvtmask64_u64(_mm512_cmpgt_epu8_mask(mine, limits));
                }
            }
#endif
            for (int r = 0; r < rows_here; r += LANES) {
                unsigned node[LANES] = {0};
                const uint8_t* row[LANES];
                for (int q = 0; q < LANES; q++) row[q] = ranks[r + q];  /* past the end: zeros */
#ifdef __AVX512VBMI__
                if (by_bits) {
                    uint64_t bits[LANES];
                    for (int q = 0; q < LANES; q++) bits[q] = r + q < rows_here ? goes_right[r + q] : 0;
                    for (unsigned level = 0; level < depth; level++) {
                        unsigned inside = 0;
#pragma GCC unroll 8
                        for (int q = 0; q < LANES; q++) {
                            /* a leaf's bit is arbitrary: both its children are itself */
                            node[q] = child[2 * node[q] + ((bits[q] >> (node[q] & 63)) & 1)];
                            inside |= node[q] < first_leaf;
                        }
                        if (!inside) break;
                    }
                } else
#endif
                {
                    for (unsigned level = 0; level < depth; level++) {
                        unsigned inside = 0;
#pragma GCC unroll 8
                        for (int q = 0; q < LANES; q++) {
                            const unsigned at = node[q];
                            node[q] = child[2 * at + (row[q][feature[at]] > rank[at])];
                            inside |= node[q] < first_leaf;
                        }
                        if (!inside) break;
                    }
                }
                for (int q = 0; q < LANES && r + q < rows_here; q++) sum[r + q] += leaf[node[q] - first_leaf];
            }
        }
        for (int r = 0; r < rows_here; r++) out[first + r] = sum[r];
    }
}

/* Batches through a LightGBM model held as tables (tree_tables.py encodes them), exactly
 * as LightGBM's own predict: the same comparisons, leaves summed in tree order.
 *
 * Why tables and not the compiled if-else code (compiled.py): a batch walks each tree
 * for many rows, and if-else code pays a mispredicted branch at most levels. Here:
 *  - each feature value becomes its rank among the model's thresholds for that feature
 *    (a branch-free binary search), so `value <= threshold` is `rank <= threshold's
 *    rank`, exactly, and a feature of 64 rows is one 64-byte vector;
 *  - trees are taken in chunks small enough for the L2 cache, each chunk over every
 *    block of 64 rows: the tables come from memory once per batch, not once per block;
 *  - with AVX-512 (BW, BITALG and VBMI), trees of up to 64 leaves follow QuickScorer
 *    (Lucchese et al., SIGIR 2015) turned on its side: for each split one compare gives
 *    the 64 rows it sends right, and each such row rules out the leaves left of it. A row's
 *    surviving leaves are 64 bits held as 8 byte slices across 8 registers (slice j:
 *    leaves 8j..8j+7 of all 64 rows), so a split costs one compare and 8 bitwise ops for
 *    64 rows. The exit leaf is the leftmost survivor;
 *  - larger trees, and CPUs without those instructions, walk 8 rows in lockstep with no
 *    branch per level (leaves point to themselves; the walk stops when all 8 rows sit on
 *    leaves).
 * One row (``predict_one``) walks its own copy of the trees of up to 64 leaves, 256 bytes
 * each (features, ranks, children: four cache lines, read ahead while earlier trees are
 * walked). Why not the compiled if-else code: between two requests the caches go cold,
 * and 6 MB of code then comes from memory one branch at a time, where 700 KB of tables
 * stream in. With AVX-512 one permute gives a tree's 64 splits the row's ranks and one
 * compare their directions; 8 trees are walked at once, the walk ending when all 8 sit
 * on leaves; leaves are added in tree order afterwards.
 * Built by the system's compiler for the machine it runs on (-march=native).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512BW__) && defined(__AVX512BITALG__) && defined(__AVX512VBMI__)
#define SIDEWAYS 1
#endif
#if defined(SIDEWAYS) || defined(__SSE__)
#include <immintrin.h>
#endif

#define BLOCK 64  /* rows per block: one byte each in a 64-byte vector */
#define LANES 8   /* rows walking one tree in lockstep */
#define NODES 256
#define CHUNK 64  /* trees per pass over the blocks: about 200 KB of tables */
#define SMALL 64  /* splits of a tree in the one-row tables: features, ranks, children */
#define AHEAD 16  /* trees read ahead by the one-row walk */
#define RUN 512   /* trees whose exit leaves one-row walks before adding them */

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
    const uint32_t* clear;    /* [tree][64][8] trees of up to 64 leaves: per split, byte j of
                                 the leaves it rules out when it sends a row right (its left
                                 subtree; bit b of byte j is leaf 8j+b), repeated 4 times */
    const uint8_t* small;     /* [tree][4][SMALL] trees of up to 64 leaves: feature, rank,
                                 then left and right child of each split; a child from
                                 SMALL on is the leaf child - SMALL (left to right) */
} tables_t;

const char* kernel_isa(void) {
#ifdef SIDEWAYS
    return "avx512";
#else
    return "portable";
#endif
}

/* How many of the feature's thresholds lie below the value. NaN counts as 0.0, as
 * LightGBM does for splits without a missing-value direction (the only ones encoded). */
static inline uint8_t rank_of(const double* th, int count, double v) {
    v = isnan(v) ? 0.0 : v;
    if (count == 0) return 0;
    const double* base = th;
    while (count > 1) {  /* a conditional move per level, not a branch */
        const int half = count >> 1;
        base = base[half - 1] < v ? base + half : base;
        count -= half;
    }
    return (uint8_t)((base - th) + (*base < v));
}

/* One tree's leaf value for each row of a block, 8 rows in lockstep. */
static void walk(const tables_t* t, int k, const uint8_t (*ranks)[BLOCK], int rows_here, double* value) {
    const uint8_t* feature = t->feature + (size_t)k * NODES;
    const uint8_t* rank = t->rank + (size_t)k * NODES;
    const uint8_t* child = t->child + (size_t)k * NODES * 2;
    const double* leaf = t->leaf + (size_t)k * (NODES / 2);
    const unsigned first_leaf = t->first_leaf[k], depth = t->depth[k];
    for (int r = 0; r < rows_here; r += LANES) {
        unsigned node[LANES] = {0};
        for (unsigned level = 0; level < depth; level++) {
            unsigned inside = 0;
#pragma GCC unroll 8
            for (int q = 0; q < LANES; q++) {  /* rows past the end have rank 0 */
                const unsigned at = node[q];
                node[q] = child[2 * at + (ranks[feature[at]][r + q] > rank[at])];
                inside |= node[q] < first_leaf;
            }
            if (!inside) break;
        }
        for (int q = 0; q < LANES; q++) value[r + q] = leaf[node[q] - first_leaf];
    }
}

#ifdef SIDEWAYS
/* ``L[idx]`` for 8 indices below 64: four two-table permutes and a choice among them. */
static inline __m512d leaf_of(const double* L, __m512i idx) {
    const __m512d a = _mm512_permutex2var_pd(_mm512_loadu_pd(L), idx, _mm512_loadu_pd(L + 8));
    const __m512d b = _mm512_permutex2var_pd(_mm512_loadu_pd(L + 16), idx, _mm512_loadu_pd(L + 24));
    const __m512d c = _mm512_permutex2var_pd(_mm512_loadu_pd(L + 32), idx, _mm512_loadu_pd(L + 40));
    const __m512d d = _mm512_permutex2var_pd(_mm512_loadu_pd(L + 48), idx, _mm512_loadu_pd(L + 56));
    const __mmask8 k16 = _mm512_test_epi64_mask(idx, _mm512_set1_epi64(16));
    const __mmask8 k32 = _mm512_test_epi64_mask(idx, _mm512_set1_epi64(32));
    return _mm512_mask_blend_pd(k32, _mm512_mask_blend_pd(k16, a, b), _mm512_mask_blend_pd(k16, c, d));
}

/* One tree of up to 64 leaves over a block: every row's exit leaf, added to its sum. */
static inline void sideways(const tables_t* t, int k, const uint8_t (*ranks)[BLOCK], __m512d* s) {
    const uint8_t* feature = t->feature + (size_t)k * NODES;
    const uint8_t* rank = t->rank + (size_t)k * NODES;
    const uint32_t* clear = t->clear + (size_t)k * 64 * 8;
    const __m512i all = _mm512_set1_epi8(-1);
    __m512i v0 = all, v1 = all, v2 = all, v3 = all, v4 = all, v5 = all, v6 = all, v7 = all;
    for (int i = 0, n = t->first_leaf[k]; i < n; i++) {
        /* 0xFF for each row this split sends right */
        const __m512i right = _mm512_movm_epi8(
            _mm512_cmpgt_epu8_mask(_mm512_load_si512(ranks[feature[i]]), _mm512_set1_epi8((char)rank[i])));
        const uint32_t* c = clear + i * 8;
#define RULE_OUT(j) v##j = _mm512_ternarylogic_epi32(v##j, right, _mm512_set1_epi32((int)c[j]), 0x70) /* v & ~(right & c) */
        RULE_OUT(0); RULE_OUT(1); RULE_OUT(2); RULE_OUT(3); RULE_OUT(4); RULE_OUT(5); RULE_OUT(6); RULE_OUT(7);
    }
    /* the leftmost survivor: the first slice holding one, then its lowest bit */
    __m512i first = v7, base = _mm512_set1_epi8(56);
#define EARLIER(j)                                                         \
    {                                                                      \
        const __mmask64 some = _mm512_test_epi8_mask(v##j, v##j);          \
        first = _mm512_mask_mov_epi8(first, some, v##j);                   \
        base = _mm512_mask_mov_epi8(base, some, _mm512_set1_epi8(8 * j));  \
    }
    EARLIER(6); EARLIER(5); EARLIER(4); EARLIER(3); EARLIER(2); EARLIER(1); EARLIER(0);
    const __m512i below = _mm512_andnot_si512(first, _mm512_sub_epi8(first, _mm512_set1_epi8(1)));
    const __m512i exit = _mm512_add_epi8(base, _mm512_popcnt_epi8(below));  /* base + trailing zeros */
    const double* leaf = t->leaf + (size_t)k * (NODES / 2);
    const __m128i e0 = _mm512_extracti32x4_epi32(exit, 0), e1 = _mm512_extracti32x4_epi32(exit, 1),
                  e2 = _mm512_extracti32x4_epi32(exit, 2), e3 = _mm512_extracti32x4_epi32(exit, 3);
    s[0] = _mm512_add_pd(s[0], leaf_of(leaf, _mm512_cvtepu8_epi64(e0)));
    s[1] = _mm512_add_pd(s[1], leaf_of(leaf, _mm512_cvtepu8_epi64(_mm_srli_si128(e0, 8))));
    s[2] = _mm512_add_pd(s[2], leaf_of(leaf, _mm512_cvtepu8_epi64(e1)));
    s[3] = _mm512_add_pd(s[3], leaf_of(leaf, _mm512_cvtepu8_epi64(_mm_srli_si128(e1, 8))));
    s[4] = _mm512_add_pd(s[4], leaf_of(leaf, _mm512_cvtepu8_epi64(e2)));
    s[5] = _mm512_add_pd(s[5], leaf_of(leaf, _mm512_cvtepu8_epi64(_mm_srli_si128(e2, 8))));
    s[6] = _mm512_add_pd(s[6], leaf_of(leaf, _mm512_cvtepu8_epi64(e3)));
    s[7] = _mm512_add_pd(s[7], leaf_of(leaf, _mm512_cvtepu8_epi64(_mm_srli_si128(e3, 8))));
}
#endif

/* Returns 0, or -1 when the scratch memory cannot be had. */
int predict(const tables_t* t, const double* rows, int64_t n_rows, double* out) {
    if (n_rows <= 0) return 0;
    const int nf = t->n_features;
    const int64_t blocks = (n_rows + BLOCK - 1) / BLOCK;
    uint8_t (*ranks)[BLOCK] = aligned_alloc(64, (size_t)(blocks * nf + 1) * BLOCK);  /* [block][feature][row] */
    double* sums = aligned_alloc(64, (size_t)blocks * BLOCK * sizeof(double));
    if (!ranks || !sums) {
        free(ranks);
        free(sums);
        return -1;
    }
    for (int64_t b = 0; b < blocks; b++)
        for (int f = 0; f < nf; f++) {
            const double* th = t->thresholds + t->offsets[f];
            const int count = t->offsets[f + 1] - t->offsets[f];
            for (int r = 0; r < BLOCK; r++) {
                const int64_t row = b * BLOCK + r;
                ranks[b * nf + f][r] = row < n_rows ? rank_of(th, count, rows[row * nf + f]) : 0;
            }
        }
    memset(sums, 0, (size_t)blocks * BLOCK * sizeof(double));
    double value[BLOCK] __attribute__((aligned(64))) = {0};  /* rows past the end: 0 */
    for (int first = 0; first < t->n_trees; first += CHUNK) {
        const int last = first + CHUNK < t->n_trees ? first + CHUNK : t->n_trees;
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t (*mine)[BLOCK] = ranks + b * nf;
            double* sum = sums + b * BLOCK;
            const int rows_here = (int)(n_rows - b * BLOCK < BLOCK ? n_rows - b * BLOCK : BLOCK);
#ifdef SIDEWAYS
            __m512d s[8];
            for (int g = 0; g < 8; g++) s[g] = _mm512_load_pd(sum + 8 * g);
            for (int k = first; k < last; k++) {
                if (t->first_leaf[k] < 64) {
                    sideways(t, k, mine, s);
                    continue;
                }
                walk(t, k, mine, rows_here, value);
                for (int g = 0; g < 8; g++) s[g] = _mm512_add_pd(s[g], _mm512_load_pd(value + 8 * g));
            }
            for (int g = 0; g < 8; g++) _mm512_store_pd(sum + 8 * g, s[g]);
#else
            for (int k = first; k < last; k++) {
                walk(t, k, mine, rows_here, value);
                for (int r = 0; r < rows_here; r++) sum[r] += value[r];
            }
#endif
        }
    }
    memcpy(out, sums, (size_t)n_rows * sizeof(double));
    free(ranks);
    free(sums);
    return 0;
}

static inline void prefetch_tree(const uint8_t* small) {
#ifdef __SSE__
    for (int line = 0; line < 4 * SMALL; line += 64) _mm_prefetch((const char*)small + line, _MM_HINT_T0);
#else
    (void)small;
#endif
}

/* A tree of more than 64 leaves, for one row: its nodes from the batch tables. */
static unsigned exit_of_big(const tables_t* t, int k, const uint8_t* r) {
    const uint8_t* feature = t->feature + (size_t)k * NODES;
    const uint8_t* rank = t->rank + (size_t)k * NODES;
    const uint8_t* child = t->child + (size_t)k * NODES * 2;
    const unsigned first_leaf = t->first_leaf[k];
    unsigned at = 0;
    while (at < first_leaf) at = child[2 * at + (r[feature[at]] > rank[at])];
    return at - first_leaf;
}

/* One tree of up to 64 leaves, for one row, alone. */
static unsigned exit_of_small(const uint8_t* small, const uint8_t* r) {
    unsigned at = 0;
    while (at < SMALL) at = small[2 * SMALL + 2 * at + (r[small[at]] > small[SMALL + at])];
    return at - SMALL;
}

/* The exit leaves of trees first..last-1, 8 at a time (one by one in a group holding a
 * tree of more than 64 leaves, and at the end). */
static void exits(const tables_t* t, const uint8_t* r, int first, int last, uint8_t* exit) {
#ifdef SIDEWAYS
    const __m512i r0 = _mm512_loadu_si512(r), r1 = _mm512_loadu_si512(r + 64);
    const __m512i r2 = _mm512_loadu_si512(r + 128), r3 = _mm512_loadu_si512(r + 192);
#endif
    for (int k = first; k < last; k += 8) {
        int alone = k + 8 > last;
        for (int q = 0; q < 8 && !alone; q++) alone = t->first_leaf[k + q] >= SMALL;
        if (alone) {
            for (int j = k; j < last && j < k + 8; j++)
                exit[j - first] = (uint8_t)(t->first_leaf[j] >= SMALL
                                                ? exit_of_big(t, j, r)
                                                : exit_of_small(t->small + (size_t)j * 4 * SMALL, r));
            continue;
        }
        const uint8_t* children[8];
        unsigned at[8];
#ifdef SIDEWAYS
        uint64_t right[8];  /* per split: 1 if it sends the row right */
#endif
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) {
            const uint8_t* small = t->small + (size_t)(k + q) * 4 * SMALL;
            if (k + q + AHEAD < t->n_trees) prefetch_tree(small + (size_t)AHEAD * 4 * SMALL);
            children[q] = small + 2 * SMALL;
            at[q] = 0;
#ifdef SIDEWAYS
            const __m512i f = _mm512_loadu_si512(small);
            const __m512i low = _mm512_permutex2var_epi8(r0, f, r1), high = _mm512_permutex2var_epi8(r2, f, r3);
            const __m512i ranks = _mm512_mask_blend_epi8(_mm512_movepi8_mask(f), low, high);
            right[q] = _mm512_cmpgt_epu8_mask(ranks, _mm512_loadu_si512(small + SMALL));
#endif
        }
        for (;;) {  /* every tree one level down; those on a leaf stay */
            unsigned inside = 0;
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++) {
                const unsigned a = at[q] & (SMALL - 1);
#ifdef SIDEWAYS
                const unsigned next = children[q][2 * a + ((right[q] >> a) & 1)];
#else
                const uint8_t* small = children[q] - 2 * SMALL;
                const unsigned next = children[q][2 * a + (r[small[a]] > small[SMALL + a])];
#endif
                at[q] = at[q] >= SMALL ? at[q] : next;
                inside |= at[q] < SMALL;
            }
            if (!inside) break;
        }
        for (int q = 0; q < 8; q++) exit[k - first + q] = (uint8_t)(at[q] - SMALL);
    }
}

/* One row: its price, exactly as ``predict`` would give it. */
double predict_one(const tables_t* t, const double* row) {
    uint8_t r[256] = {0};
    for (int f = 0; f < t->n_features; f++)
        r[f] = rank_of(t->thresholds + t->offsets[f], t->offsets[f + 1] - t->offsets[f], row[f]);
    uint8_t exit[RUN];
    double sum = 0.0;
    for (int first = 0; first < t->n_trees; first += RUN) {
        const int last = first + RUN < t->n_trees ? first + RUN : t->n_trees;
        exits(t, r, first, last, exit);
        for (int k = first; k < last; k++) sum += t->leaf[(size_t)k * (NODES / 2) + exit[k - first]];
    }
    return sum;
}

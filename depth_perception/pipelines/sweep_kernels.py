"""Compiled kernels of the classical sweep (numba): the census + ZNCC cost of every plane, SGM path aggregation,
winner-take-all with its confidence, and the left-right check.

Each kernel computes what the numpy code beside it in `stereo_classical` computes (the tests hold them equal);
they fuse the passes numpy makes over the (H, W, L) volume and run rows in parallel, which is what brings the
sweep near OpenCV's StereoSGBM in time (issue 19). The first call compiles (15-30 s on a small CPU; cached on disk
under numba's cache directory afterwards). `AVAILABLE` is False where numba is not installed (a ROS distro without
python3-numba) or DEPTH_PERCEPTION_NO_NUMBA=1 is set: the sweep then runs its numpy code, with the same
results, slower.
"""
from __future__ import annotations

import numpy as np

from ..geometry.compiled import NUMBA as AVAILABLE  # numba installed and DEPTH_PERCEPTION_NO_NUMBA not 1
from ..geometry.compiled import numba as nb


def _njit(parallel: bool = False):
    def wrap(fn):
        if nb is None:
            return fn
        # error_model="numpy": a division by zero gives inf/nan as in numpy instead of a Python check per
        # division, which would keep the loops from being vectorized
        return nb.njit(parallel=parallel, cache=True, nogil=True, error_model="numpy")(fn)

    return wrap


prange = nb.prange if nb is not None else range  # numba runs these loops in parallel


@_njit()
def _popcount32(v):
    v = v - ((v >> np.uint32(1)) & np.uint32(0x55555555))
    v = (v & np.uint32(0x33333333)) + ((v >> np.uint32(2)) & np.uint32(0x33333333))
    v = (v + (v >> np.uint32(4))) & np.uint32(0x0F0F0F0F)
    return (v + (v >> np.uint32(8)) + (v >> np.uint32(16)) + (v >> np.uint32(24))) & np.uint32(0x3F)


@_njit()
def _census_row_5x5(a, yc, p, w, code):
    """Census codes (24 bits, row by row over the 5x5 window, the centre left out) of row yc of the padded image
    a, columns p ... p + w - 1. Constant trip counts let the compiler unroll the window, and unsigned indices
    spare it numba's negative-index check per access, which would keep the loop from being vectorized."""
    yc, p = np.uint64(yc), np.uint64(p)
    for xi in range(w):
        x = np.uint64(xi) + p
        c = a[yc, x]
        v = np.uint32(0)
        b = np.uint32(0)
        for dy in range(5):
            for dx in range(5):
                if dy == 2 and dx == 2:
                    continue
                v |= np.uint32(a[yc + np.uint64(dy) - np.uint64(2), x + np.uint64(dx) - np.uint64(2)] < c) << b
                b += np.uint32(1)
        code[xi] = v


# the 3x3 twin of _census_row_5x5: constant window sizes let the compiler unroll the window (a radius argument
# measured 3-5x slower)
@_njit()
def _census_row_3x3(a, yc, p, w, code):
    """`_census_row_5x5` for the 3x3 window (8 bits)."""
    yc, p = np.uint64(yc), np.uint64(p)
    for xi in range(w):
        x = np.uint64(xi) + p
        c = a[yc, x]
        v = np.uint32(0)
        b = np.uint32(0)
        for dy in range(3):
            for dx in range(3):
                if dy == 1 and dx == 1:
                    continue
                v |= np.uint32(a[yc + np.uint64(dy) - np.uint64(1), x + np.uint64(dx) - np.uint64(1)] < c) << b
                b += np.uint32(1)
        code[xi] = v


@_njit()
def _column_sums(img, yc, zr, x0, wide, col_w, col_ww, first):
    """The ZNCC window's column sums of values and squares at padded row yc of img, columns x0 ... x0 + wide - 1:
    summed over rows yc - zr ... yc + zr when `first`, else slid down from row yc - 1's (one row in, one out)."""
    if first:
        col_w[:] = 0.0
        col_ww[:] = 0.0
        for dy in range(-zr, zr + 1):
            r = img[yc + dy, x0: x0 + wide]
            for xi in range(wide):
                x = np.uint64(xi)
                col_w[x] += r[x]
                col_ww[x] += r[x] * r[x]
        return
    ri, ro = img[yc + zr, x0: x0 + wide], img[yc - zr - 1, x0: x0 + wide]
    for xi in range(wide):
        x = np.uint64(xi)
        a, b = ri[x], ro[x]
        col_w[x] += a - b
        col_ww[x] += a * a - b * b


@_njit()
def _row_taps(col, k, out):
    """out[x] = col[x] + ... + col[x + k - 1]: k taps along the row, no carried dependency, so it vectorizes."""
    out[:] = 0.0
    for ji in range(k):
        j = np.uint64(ji)
        for xi in range(out.shape[0]):
            x = np.uint64(xi)
            out[x] += col[x + j]


@_njit()
def _window_mean_std(col_w, col_ww, k, mean, std):
    """The mean and standard deviation over k x k windows from their column sums (k taps along the row, no
    carried dependency): mean[x], std[x] of the window whose columns are x ... x + k - 1."""
    n = mean.shape[0]
    norm = np.float32(1.0 / (k * k))
    _row_taps(col_w, k, mean)
    _row_taps(col_ww, k, std)
    for xi in range(n):
        x = np.uint64(xi)
        mw = mean[x] * norm
        mean[x] = mw
        std[x] = np.sqrt(max(std[x] * norm - mw * mw, np.float32(0.0)))


@_njit()
def _add_zncc(plane, g0, ref_pad, x0, yc, zr, first, col_rw, box_rw, mean, std, ref_mean, ref_std, weight, row):
    """row += weight * clip(1 - ZNCC, 0, 2) for one row of one plane: the reference x plane window sums (their
    column sums in col_rw, started at padded row yc when `first`, else slid down one row) against the plane's
    window mean and deviation (mean, std) and the reference's. The plane's columns start at g0 and the padded
    reference's at x0."""
    wide = col_rw.shape[0]
    w = row.shape[0]
    k = 2 * zr + 1
    norm = np.float32(1.0 / (k * k))
    if first:
        col_rw[:] = 0.0
        for dy in range(-zr, zr + 1):
            wr = plane[yc + dy, g0: g0 + wide]
            rr = ref_pad[yc + dy, x0: x0 + wide]
            for xi in range(wide):
                x = np.uint64(xi)
                col_rw[x] += rr[x] * wr[x]
    else:
        wi, ri = plane[yc + zr, g0: g0 + wide], ref_pad[yc + zr, x0: x0 + wide]
        wo, ro = plane[yc - zr - 1, g0: g0 + wide], ref_pad[yc - zr - 1, x0: x0 + wide]
        for xi in range(wide):
            x = np.uint64(xi)
            col_rw[x] += ri[x] * wi[x] - ro[x] * wo[x]
    _row_taps(col_rw, k, box_rw)
    for xi in range(w):
        x = np.uint64(xi)
        zncc = (box_rw[x] * norm - ref_mean[x] * mean[x]) / (ref_std[x] * std[x] + np.float32(1e-4))
        row[x] += weight * min(max(np.float32(1.0) - zncc, np.float32(0.0)), np.float32(2.0))


@_njit()
def _store_row(plane_rows, seen_rows, cy, vy, neutral_unseen, invalid_cost):
    """One row's costs and visibility, computed plane by plane (L, W), into the (W, L) row of the volume: a whole
    row at a time, because writing each plane straight into the volume would scatter stores L apart, which costs
    more than computing the costs. With `neutral_unseen` each pixel's unseen planes are made neutral."""
    L, w = plane_rows.shape
    for xi in range(w):
        x = np.uint64(xi)
        for li in range(L):
            lvl = np.uint64(li)
            cy[x, lvl] = plane_rows[lvl, x]
            vy[x, lvl] = seen_rows[lvl, x]
        if neutral_unseen:
            _neutral(cy[x], vy[x], invalid_cost)


@_njit(parallel=True)
def plane_cost_volume(ref_census, ref_pad, ref_mean, ref_std, warped_pad, inside, census_radius, zncc_radius,
                      census_weight, bits, invalid_cost, neutral_unseen, cost, valid):
    """The matching cost of every plane at once: cost[y, x, l] = w * Hamming(ref census, census of warped plane l)
    / bits + (1 - w) * (1 - ZNCC) / 2, `invalid_cost` where plane l's warp leaves the source image.

    warped_pad (L, H + 2p, W + 2p): the warped source per plane and ref_pad (H + 2p, W + 2p) the reference, both
    reflect-padded by p = max(census_radius, zncc_radius) (OpenCV's BORDER_REFLECT, as the numpy code's box
    filters). Everything runs a row at a time over whole rows without branches, so the compiler vectorizes it:
    the census with its window unrolled, the ZNCC window's sums (warped, warped^2, reference x warped) down the
    window's rows and then along the row. With `neutral_unseen` a plane the view does not see takes the pixel's
    mean cost over the planes it does see (`_neutral`, what the multi-view code does; here without a second pass
    over the volume). Rows go in a few bands, one band per iteration of the parallel loop, so the row buffers are
    allocated once a band."""
    L, h, w = inside.shape
    p = max(census_radius, zncc_radius)
    cr, zr = census_radius, zncc_radius
    k = 2 * zr + 1
    cw = np.float32(census_weight)
    cs = np.float32(census_weight / bits)
    zw = np.float32((1.0 - census_weight) * 0.5)
    wide = w + 2 * zr
    bands = min(h, 8)
    for band in prange(bands):
        code = np.empty(w, np.uint32)
        row = np.empty(w, np.float32)
        # the ZNCC window's column sums per plane, slid down the band a row at a time (one row in, one out)
        cols_w = np.empty((L, wide), np.float32)
        cols_ww = np.empty((L, wide), np.float32)
        cols_rw = np.empty((L, wide), np.float32)
        y_first = band * h // bands
        mean_w = np.empty(w, np.float32)
        std_w = np.empty(w, np.float32)
        box_rw = np.empty(w, np.float32)
        plane_rows = np.empty((L, w), np.float32)
        seen_rows = np.empty((L, w), np.bool_)
        for y in range(band * h // bands, (band + 1) * h // bands):
            for lvl in range(L):
                wp = warped_pad[lvl]
                row[:] = 0.0
                if cw > 0:
                    if cr == 2:
                        _census_row_5x5(wp, y + p, p, w, code)
                    else:
                        _census_row_3x3(wp, y + p, p, w, code)
                    ref = ref_census[y]
                    for xi in range(w):
                        x = np.uint64(xi)
                        row[x] += cs * np.float32(_popcount32(ref[x] ^ code[x]))
                if cw < 1:
                    x0 = p - zr
                    col_w, col_ww, col_rw = cols_w[lvl], cols_ww[lvl], cols_rw[lvl]
                    _column_sums(wp, y + p, zr, x0, wide, col_w, col_ww, y == y_first)
                    _window_mean_std(col_w, col_ww, k, mean_w, std_w)
                    _add_zncc(wp, x0, ref_pad, x0, y + p, zr, y == y_first, col_rw, box_rw, mean_w, std_w,
                              ref_mean[y], ref_std[y], zw, row)
                seen = inside[lvl, y]
                pr, sr = plane_rows[lvl], seen_rows[lvl]
                for xi in range(w):
                    x = np.uint64(xi)
                    pr[x] = row[x] if seen[x] else np.float32(invalid_cost)
                    sr[x] = seen[x]
            _store_row(plane_rows, seen_rows, cost[y], valid[y], neutral_unseen, invalid_cost)


@_njit(parallel=True)
def fraction_images(src, fractions, pad, j_lo, images):
    """The source shifted along its rows by each sub-pixel fraction: images[q, yp, c] = (1 - f) src[clamp(j)] +
    f src[clamp(j + 1)] with f = fractions[q], j = j_lo + c, and rows reflect-padded by `pad` (OpenCV's
    BORDER_REFLECT). A rectified plane of disparity d = m - f (m = ceil(d)) is this image read at j = x - m, with
    the same arithmetic as `shift_planes`: every plane that shares a fraction shares one image."""
    h, w = src.shape
    Q, hp, we = images.shape
    for i in prange(Q * hp):
        q, yp = i // hp, i % hp
        row, out = src[_reflect(yp - pad, h)], images[q, yp]
        f = fractions[q]
        a = np.float32(1.0) - f
        for c in range(we):
            j = j_lo + c
            out[c] = a * row[min(max(j, 0), w - 1)] + f * row[min(max(j + 1, 0), w - 1)]


@_njit(parallel=True)
def fraction_stats(images, pad, census_radius, zncc_radius, codes, mean, std):
    """What the matching cost needs from each shifted image alone, at every pixel (y, s) of images[q] (s = column
    - pad, y = row - pad): its census code and the mean and standard deviation over the ZNCC window. Computed
    once per fraction instead of once per plane."""
    Q, hp, we = images.shape
    h = hp - 2 * pad
    ws = we - 2 * pad
    zr = zncc_radius
    k = 2 * zr + 1
    x0 = pad - zr
    wide = ws + 2 * zr
    bands = min(h, 8)
    for i in prange(Q * bands):
        q, band = i // bands, i % bands
        img = images[q]
        col_w = np.zeros(wide, np.float32)
        col_ww = np.zeros(wide, np.float32)
        y_first = band * h // bands
        for y in range(y_first, (band + 1) * h // bands):
            if census_radius == 2:
                _census_row_5x5(img, y + pad, pad, ws, codes[q, y])
            else:
                _census_row_3x3(img, y + pad, pad, ws, codes[q, y])
            _column_sums(img, y + pad, zr, x0, wide, col_w, col_ww, y == y_first)
            _window_mean_std(col_w, col_ww, k, mean[q, y], std[q, y])


@_njit(parallel=True)
def shifted_cost_volume(ref_census, ref_pad, ref_mean, ref_std, images, codes, mean, std, shifts, plane_fraction,
                        disparities, m_max, census_radius, zncc_radius, census_weight, bits, invalid_cost,
                        neutral_unseen, cost, valid):
    """`plane_cost_volume` for a rectified view whose planes lie on a grid of sub-pixel fractions: plane l (disparity
    d = m - f, m = shifts[l], f the fraction of images[plane_fraction[l]]) reads its census codes and its window's
    mean and deviation (`fraction_stats`) from its fraction's at column x - m (+ m_max); only the reference x
    plane product is summed per plane. The planes' windows see the shifted source beyond the image's columns
    (the clamped rows of `fraction_images`), where `plane_cost_volume` reflects each warped plane: `plane_costs`
    does the same in numpy."""
    L = shifts.shape[0]
    h, w = ref_mean.shape
    p = (ref_pad.shape[1] - w) // 2
    zr = zncc_radius
    cw = np.float32(census_weight)
    cs = np.float32(census_weight / bits)
    zw = np.float32((1.0 - census_weight) * 0.5)
    wide = w + 2 * zr
    x0 = p - zr
    bands = min(h, 8)
    for band in prange(bands):
        row = np.empty(w, np.float32)
        cols_rw = np.empty((L, wide), np.float32)
        box_rw = np.empty(w, np.float32)
        plane_rows = np.empty((L, w), np.float32)
        seen_rows = np.empty((L, w), np.bool_)
        y_first = band * h // bands
        for y in range(y_first, (band + 1) * h // bands):
            for lvl in range(L):
                m = shifts[lvl]
                q = plane_fraction[lvl]
                s0 = m_max - m  # stats column of x = 0; the image column of x' is x' + s0 + p
                img = images[q]
                row[:] = 0.0
                if cw > 0:
                    ref = ref_census[y]
                    code = codes[q, y, s0: s0 + w]
                    for xi in range(w):
                        x = np.uint64(xi)
                        row[x] += cs * np.float32(_popcount32(ref[x] ^ code[x]))
                if cw < 1:
                    _add_zncc(img, x0 + s0, ref_pad, x0, y + p, zr, y == y_first, cols_rw[lvl], box_rw,
                              mean[q, y, s0: s0 + w], std[q, y, s0: s0 + w], ref_mean[y], ref_std[y], zw, row)
                # seen where the nearest sample x - d + 1/2 rounded down lies inside: first <= x < first + w
                first = int(np.ceil(disparities[lvl] - np.float32(0.5)))
                lo, hi = min(max(first, 0), w), min(max(first + w, 0), w)
                pr, sr = plane_rows[lvl], seen_rows[lvl]
                for xi in range(w):
                    x = np.uint64(xi)
                    seen = (xi >= lo) & (xi < hi)
                    pr[x] = row[x] if seen else np.float32(invalid_cost)
                    sr[x] = seen
            _store_row(plane_rows, seen_rows, cost[y], valid[y], neutral_unseen, invalid_cost)


@_njit()
def _reflect(i, n):
    """OpenCV's BORDER_REFLECT index (fedcba|abcdefgh|hgfedcb) for -n <= i < 2n."""
    return -i - 1 if i < 0 else (2 * n - 1 - i if i >= n else i)


@_njit(parallel=True)
def shift_planes(src, disparities, pad, warped_pad, inside):
    """`stereo_classical.shift_plane` for every plane at once, straight into the cost kernel's layout:
    warped_pad (L, H + 2 pad, W + 2 pad) the shifted source reflect-padded (OpenCV's BORDER_REFLECT) and
    inside (L, H, W). One row of one plane per iteration, in parallel; inside the image's columns the two
    neighbours are consecutive reads, so the loop vectorizes."""
    h, w = src.shape
    L = disparities.shape[0]
    hp = h + 2 * pad
    for i in prange(L * hp):
        lvl, yp = i // hp, i % hp
        row, out = src[_reflect(yp - pad, h)], warped_pad[lvl, yp]
        d = disparities[lvl]
        m = int(np.ceil(d))
        f = np.float32(m) - d
        a = np.float32(1.0) - f
        lo, hi = min(max(m, 0), w), max(min(w - 1 + m, w), 0)  # x - m and x - m + 1 both inside for lo <= x < hi
        for x in range(lo):
            out[pad + x] = a * row[min(max(x - m, 0), w - 1)] + f * row[min(max(x - m + 1, 0), w - 1)]
        for x in range(max(hi, lo), w):
            out[pad + x] = a * row[min(max(x - m, 0), w - 1)] + f * row[min(max(x - m + 1, 0), w - 1)]
        for xi in range(lo, hi):
            x = np.uint64(xi)
            k = np.uint64(xi - m)
            out[np.uint64(pad) + x] = a * row[k] + f * row[k + np.uint64(1)]
        for j in range(pad):  # the reflected columns
            out[pad - 1 - j] = out[pad + j]
            out[pad + w + j] = out[pad + w - 1 - j]
        if pad <= yp < pad + h:  # the nearest sample x - d + 1/2 rounded down inside: first <= x < first + w
            first = int(np.ceil(d - np.float32(0.5)))
            seen = inside[lvl, yp - pad]
            seen[:] = False
            seen[min(max(first, 0), w): min(max(first + w, 0), w)] = True


@_njit()
def _neutral(c, v, invalid_cost):
    """One pixel's costs c (L) made neutral where v (L) says the view does not see the plane: the mean cost over
    the planes it does see (`invalid_cost` where it sees none), as the multi-view code does."""
    L = c.shape[0]
    total = np.float32(0.0)
    n = 0
    for d in range(L):
        if v[d]:
            total += c[d]
            n += 1
    if n == L:
        return
    fill = total / np.float32(n) if n > 0 else np.float32(invalid_cost)
    for d in range(L):
        if not v[d]:
            c[d] = fill


@_njit()
def _path_step(c, prev, cur, p1, jump):
    """One SGM step: cur[d] = c[d] + min(prev[d], prev[d +- 1] + p1, min(prev) + jump) - min(prev); branchless,
    with unsigned indices (no negative-index checks), so the loop over the planes vectorizes. L >= 3."""
    L = c.shape[0]
    mn = prev[0]
    for d in range(1, L):
        mn = min(mn, prev[d])
    far = mn + jump
    cur[0] = c[0] + min(min(prev[0], far), prev[1] + p1) - mn
    for di in range(1, L - 1):
        d = np.uint64(di)
        b = min(min(prev[d], far), min(prev[d - np.uint64(1)], prev[d + np.uint64(1)]) + p1)
        cur[d] = c[d] + b - mn
    cur[L - 1] = c[L - 1] + min(min(prev[L - 1], far), prev[L - 2] + p1) - mn


@_njit()
def _add(out, values):
    for di in range(values.shape[0]):
        d = np.uint64(di)
        out[d] += values[d]


@_njit(parallel=True)
def sgm_rows(C, gray, p1, p2, edge_gain, out):
    """out = the sum of the left->right and right->left SGM paths of C (H, W, L) (out's contents are not read);
    P2 shrinks to max(p2 / (1 + g), p1) across an intensity step g = edge_gain * |gray step| into the pixel
    along the path."""
    h, w, L = C.shape
    p1f = np.float32(p1)
    for y in prange(h):
        a = np.empty(L, np.float32)
        b = np.empty(L, np.float32)
        for d in range(L):
            a[d] = C[y, 0, d]
            out[y, 0, d] = a[d]
        for x in range(1, w):
            g = np.float32(abs(gray[y, x] - gray[y, x - 1]) * np.float32(edge_gain))
            jump = max(np.float32(p2) / (np.float32(1.0) + g), p1f)
            _path_step(C[y, x], a, b, p1f, jump)
            out[y, x] = b
            a, b = b, a
        for d in range(L):
            a[d] = C[y, w - 1, d]
            out[y, w - 1, d] += a[d]
        for x in range(w - 2, -1, -1):
            g = np.float32(abs(gray[y, x + 1] - gray[y, x]) * np.float32(edge_gain))
            jump = max(np.float32(p2) / (np.float32(1.0) + g), p1f)
            _path_step(C[y, x], a, b, p1f, jump)
            _add(out[y, x], b)
            a, b = b, a


# sgm_columns repeats sgm_rows with the axes swapped on purpose: one kernel taking the direction as an argument,
# or sgm_rows on a transposed view, measured 35-100% slower (index arithmetic and strided access in the hot loop).
_COLUMN_BLOCK = 16  # columns walked down together: their costs at one row are adjacent in memory


@_njit(parallel=True)
def sgm_columns(C, gray, p1, p2, edge_gain, out):
    """out += the top->bottom and bottom->top SGM paths of C (H, W, L) (as `sgm_rows`, down the columns).
    A block of adjacent columns steps down together, so each row's reads are one run of memory."""
    h, w, L = C.shape
    p1f = np.float32(p1)
    B = _COLUMN_BLOCK
    for block in prange((w + B - 1) // B):
        x0 = block * B
        n = min(B, w - x0)
        a = np.empty((B, L), np.float32)
        b = np.empty((B, L), np.float32)
        for j in range(n):
            for d in range(L):
                a[j, d] = C[0, x0 + j, d]
                out[0, x0 + j, d] += a[j, d]
        for y in range(1, h):
            for j in range(n):
                x = x0 + j
                g = np.float32(abs(gray[y, x] - gray[y - 1, x]) * np.float32(edge_gain))
                jump = max(np.float32(p2) / (np.float32(1.0) + g), p1f)
                _path_step(C[y, x], a[j], b[j], p1f, jump)
                _add(out[y, x], b[j])
            a, b = b, a
        for j in range(n):
            for d in range(L):
                a[j, d] = C[h - 1, x0 + j, d]
                out[h - 1, x0 + j, d] += a[j, d]
        for y in range(h - 2, -1, -1):
            for j in range(n):
                x = x0 + j
                g = np.float32(abs(gray[y + 1, x] - gray[y, x]) * np.float32(edge_gain))
                jump = max(np.float32(p2) / (np.float32(1.0) + g), p1f)
                _path_step(C[y, x], a[j], b[j], p1f, jump)
                _add(out[y, x], b[j])
            a, b = b, a


@_njit()
def _vertex_index(k, cm, c0, cp, xm, x0, xp):
    """The fractional plane index of the minimum of the parabola through the costs cm, c0, cp of planes k - 1, k,
    k + 1 at positions xm, x0, xp (disparities, or the indices themselves), the offset clipped to +-0.5 plane; k
    where the three are not convex."""
    s1 = (c0 - cm) / (x0 - xm)  # the parabola's slope midway between planes k - 1 and k, and between k and k + 1
    s2 = (cp - c0) / (xp - x0)
    curv = (s2 - s1) / (xp - xm)
    if not curv > 1e-9:
        return np.float32(k)
    vertex = np.float32(0.5) * (xm + x0) - s1 / (np.float32(2.0) * curv)
    off = (vertex - x0) / (xp - x0) if vertex >= x0 else (vertex - x0) / (x0 - xm)
    return np.float32(k) + min(max(off, np.float32(-0.5)), np.float32(0.5))


@_njit(parallel=True)
def winner_take_all(S, positions, exclude, index, confidence):
    """Per pixel of S (H, W, L): the fractional plane index (parabola through the winner and its neighbours at
    the planes' positions (L), offset clipped to +-0.5, none at the ends) and 1 - best / second best outside the
    winner's +-`exclude` planes (>= 1)."""
    h, w, L = S.shape
    for y in prange(h):
        for x in range(w):
            s = S[y, x]
            best = s[0]
            for d in range(1, L):  # a reduction without a carried index: vectorized
                best = min(best, s[d])
            k = 0
            while k < L - 1 and s[k] != best:  # the first plane that holds it, as argmin (NaN-safe bound)
                k += 1
            sub = np.float32(k)
            if 1 <= k <= L - 2:
                sub = _vertex_index(k, s[k - 1], s[k], s[k + 1], positions[k - 1], positions[k], positions[k + 1])
            index[y, x] = sub
            second = np.float32(np.inf)
            for d in range(0, k - exclude):  # outside the winner's +-exclude planes: two branch-free reductions
                second = min(second, s[d])
            for d in range(k + exclude + 1, L):
                second = min(second, s[d])
            conf = 0.0
            if second > 0:
                conf = 1.0 - best / second
                if conf != conf:  # inf / inf
                    conf = 0.0
            confidence[y, x] = min(max(conf, 0.0), 1.0)


@_njit(parallel=True)
def right_winners(S, disparities, right_index):
    """The right view's winning plane at each right pixel x: argmin over planes l of the left volume at
    x + d_l, linearly interpolated along the row (inf where x + d_l leaves the image). Plane by plane over the
    whole row (first turned plane-major), so the row's pixels run side by side with consecutive reads."""
    h, w, L = S.shape
    for y in prange(h):
        best = np.full(w, np.inf, np.float32)
        winner = np.zeros(w, np.float32)
        sy = S[y]
        planes = np.empty((L, w), np.float32)  # the row plane by plane: the reads below then run along memory
        for xi in range(w):
            for lvl in range(L):
                planes[lvl, xi] = sy[xi, lvl]
        for lvl in range(L):
            d = disparities[lvl]
            n = int(np.floor(d))  # x + d lies between x + n and x + n + 1, at the same fraction for every x
            f = d - np.float32(n)
            a = np.float32(1.0) - f
            pl = planes[lvl]
            for xi in range(max(-n, 0), max(w - 1 - n, 0)):  # x + n and x + n + 1 inside the row
                x = np.uint64(xi)
                k = np.uint64(xi + n)
                v = pl[k] * a + pl[k + np.uint64(1)] * f
                better = v < best[x]
                best[x] = v if better else best[x]
                winner[x] = np.float32(lvl) if better else winner[x]
        right_index[y] = winner


__all__ = [
    "AVAILABLE", "fraction_images", "fraction_stats", "plane_cost_volume", "right_winners", "sgm_columns", "sgm_rows",
    "shift_planes", "shifted_cost_volume", "winner_take_all",
]

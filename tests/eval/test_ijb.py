"""IJB-B / IJB-C protocols (tfface.eval.protocols.ijb, tfface.data.ijb).

Fixtures are written by the tests in insightface's IJB_release layout (meta/ lists, loose_crop/
JPEGs, the 1:N CSVs). Each loose crop is a uniform colour that encodes its index, so the fake
``embed`` can read back which image an aligned crop came from and return that image's feature
from a table; the protocol runs its real reading and alignment on the way.

The reference results come from an independent transcription, written here, of insightface's
``recognition/_evaluation_/ijb/ijb_11.py`` (``image2template_feature``: per template, the mean of
each media's image features, summed over the media, then L2-normalised; ``verification``: the
dot product of the two templates' features; flip-summed features optionally times the detector
score) and of the open-set 1:N search as Keras_insightface's ``IJB_evals.evaluation_1N`` runs it
per gallery (mated searches ranked; non-mated searches' top scores set the FPIR threshold), with
TAR@FAR and TPIR@FPIR by the issue's definition (impostor scores sorted decreasing, k =
floor(FAR·N), threshold s_k, accept strictly greater; ties at s_k rejected).
"""
import math
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from tfface import registry
from tfface.align.geometry import ARCFACE_TEMPLATE_112, ARCFACE_TEMPLATE_96x112
from tfface.data import ijb as ijb_data
from tfface.eval.protocols import ijb
from tfface.eval.verification import roc_curve, _auc

DIM = 16


# --- the transcription of the official logic ---------------------------------------------------

def ref_template_features(img_feats, templates, medias):
    """insightface's image2template_feature, loop by loop."""
    unique_templates = np.unique(templates)
    out = np.zeros((len(unique_templates), img_feats.shape[1]))
    for c, uqt in enumerate(unique_templates):
        (ind_t,) = np.where(templates == uqt)
        face_feats = img_feats[ind_t]
        face_medias = medias[ind_t]
        unique_medias, counts = np.unique(face_medias, return_counts=True)
        media_feats = []
        for u, ct in zip(unique_medias, counts):
            (ind_m,) = np.where(face_medias == u)
            if ct == 1:
                media_feats += [face_feats[ind_m]]
            else:
                media_feats += [np.mean(face_feats[ind_m], axis=0, keepdims=True)]
        out[c] = np.sum(np.array(media_feats), axis=0)
    out = out / np.sqrt(np.sum(out ** 2, -1, keepdims=True))
    return out, unique_templates


def ref_input_features(img_feats, scores, detector_score, normalize_first):
    x = img_feats.astype(np.float64)
    if normalize_first:
        x = x / np.sqrt(np.sum(x ** 2, -1, keepdims=True))
    if detector_score:
        x = x * scores[:, None]
    return x


def ref_pair_scores(tfeats, unique_templates, p1, p2):
    template2id = {int(t): i for i, t in enumerate(unique_templates)}
    return np.array([np.sum(tfeats[template2id[a]] * tfeats[template2id[b]])
                     for a, b in zip(p1, p2)])


def ref_k(far, n):
    return math.floor(Fraction(str(far)) * n)


def ref_tar_at_far(scores, labels, far):
    imp = sorted(scores[~labels], reverse=True)
    k = ref_k(far, len(imp))
    thr = imp[k] if k < len(imp) else -np.inf
    return float(np.mean(scores[labels] > thr)), thr


def ref_open_set(probe_feats, probe_subjects, gallery_feats, gallery_subjects, ranks, fpirs):
    ranks_of, mate_scores, nonmated_tops = [], [], []
    for f, s in zip(probe_feats, probe_subjects):
        sims = gallery_feats @ f
        if s in set(gallery_subjects.tolist()):
            mate = max(sims[i] for i in range(len(sims)) if gallery_subjects[i] == s)
            ahead = sum(1 for i in range(len(sims)) if gallery_subjects[i] != s and sims[i] >= mate)
            ranks_of.append(1 + ahead)
            mate_scores.append(mate)
        else:
            nonmated_tops.append(max(sims))
    ranks_of, mate_scores = np.array(ranks_of), np.array(mate_scores)
    out = {f"rank{k}": float(np.mean(ranks_of <= k)) for k in ranks}
    if nonmated_tops:
        tops = sorted(nonmated_tops, reverse=True)
        out["tpir_at_fpir"] = {}
        for f in fpirs:
            k = ref_k(f, len(tops))
            thr = tops[k] if k < len(tops) else -np.inf
            out["tpir_at_fpir"][f] = float(np.mean((ranks_of == 1) & (mate_scores > thr)))
    return out


# --- fixtures in the published layout --------------------------------------------------------

def colour_of(i):
    return (20 + 40 * (i % 6), 20 + 40 * ((i // 6) % 6), 20 + 40 * (i // 36))


def index_of(rgb):
    r, g, b = (int(round((int(v) - 20) / 40)) for v in rgb)
    return r + 6 * g + 36 * b


def random_landmarks(rng, size=96):
    """The ArcFace template moved by a random similarity that keeps it inside a size² crop."""
    s = rng.uniform(0.5, 0.7)
    a = np.deg2rad(rng.uniform(-20, 20))
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = (ARCFACE_TEMPLATE_112 - 56) @ rot.T + size / 2 + rng.uniform(-5, 5, 2)
    return np.round(pts, 3)


class Fixture:
    """A small IJB set: 6 subjects, galleries of 3 subjects each, two probe templates per
    subject plus one probe template whose images are a copy of another's (exact score ties
    between a genuine and an impostor pair)."""

    def __init__(self, tmp_path, name="ijbc", seed=0):
        rng = np.random.default_rng(seed)
        folder, prefix, galleries = ijb_data.SETS[name]
        self.name, self.galleries = name, galleries
        self.root = tmp_path / "IJB_release" / folder
        (self.root / "meta").mkdir(parents=True)
        (self.root / "loose_crop").mkdir()
        centres = rng.standard_normal((6, DIM))
        g1 = {101: 0, 102: 1, 103: 2}
        g2 = {201: 3, 202: 4, 203: 5}
        probes = {301 + 2 * s + j: s for s in range(6) for j in range(2)}
        probes[313] = 3  # a copy of template 301 (subject 0) with subject 3
        self.template_subject = {**g1, **g2, **probes}
        rows = []  # (name, template, media)
        img_subject = []
        for t, s in self.template_subject.items():
            if t == 313:
                rows += [(n, 313, m) for n, tt, m in rows if tt == 301]
                continue
            for m in range(int(rng.integers(1, 4))):
                media = int(t * 10 + m)
                for _ in range(int(rng.integers(1, 4))):
                    rows.append((f"{len(img_subject)}.jpg", t, media))
                    img_subject.append(s)
        n_img = len(img_subject)
        self.image_feats = (centres[img_subject]
                            + 0.9 * rng.standard_normal((n_img, DIM))).astype(np.float32)
        self.image_feats *= rng.uniform(0.5, 2.0, (n_img, 1)).astype(np.float32)
        self.rows = rows
        landmarks = {}
        scores = {}
        for i in range(n_img):
            Image.new("RGB", (96, 96), colour_of(i)).save(self.root / "loose_crop" / f"{i}.jpg",
                                                          quality=95)
            landmarks[f"{i}.jpg"] = random_landmarks(rng)
            scores[f"{i}.jpg"] = round(float(rng.uniform(0.3, 1.0)), 3)
        with open(self.root / "meta" / f"{prefix}_name_5pts_score.txt", "w") as fh:
            for n, _, _ in rows:
                fh.write(" ".join([n] + [f"{v:.3f}" for v in landmarks[n].ravel()]
                                  + [f"{scores[n]:.3f}"]) + "\n")
        with open(self.root / "meta" / f"{prefix}_face_tid_mid.txt", "w") as fh:
            for n, t, m in rows:
                fh.write(f"{n} {t} {m}\n")
        self.names = [n for n, _, _ in rows]
        self.idx = np.array([int(n[:-4]) for n in self.names])
        self.templates = np.array([t for _, t, _ in rows])
        self.medias = np.array([m for _, _, m in rows])
        self.scores = np.array([scores[n] for n in self.names])
        gal = list(g1) + list(g2)
        pairs = [(a, b, int(self.template_subject[a] == self.template_subject[b]))
                 for a in gal for b in probes]
        order = rng.permutation(len(pairs))
        self.pairs = np.array(pairs)[order]
        with open(self.root / "meta" / f"{prefix}_template_pair_label.txt", "w") as fh:
            for a, b, lab in self.pairs:
                fh.write(f"{a} {b} {lab}\n")
        self.gallery_sets = {galleries[0]: g1, galleries[1]: g2}
        self.probes = probes
        for key, templ in [*self.gallery_sets.items(), ("probe", probes)]:
            fname = (f"{prefix}_1N_probe_mixed.csv" if key == "probe"
                     else f"{prefix}_1N_gallery_{key}.csv")
            with open(self.root / "meta" / fname, "w") as fh:
                fh.write("TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID\n")
                for n, t, m in rows:
                    if t in templ:
                        fh.write(f"{t},{templ[t]},img/{n},{m}\n")
        self.calls = []

    def embed(self, images, key):
        """Fake embedder: the feature of the image whose colour the crop's centre shows."""
        self.calls.append((key, getattr(images, "shape", len(images))))
        assert isinstance(images, np.ndarray) and images.dtype == np.uint8
        h, w = images.shape[1:3]
        return self.image_feats[[index_of(im[h // 2, w // 2]) for im in images]]

    def reference_11(self, detector_score=True, normalize_first=False, far=ijb.FAR_11):
        x = ref_input_features(self.image_feats[self.idx], self.scores, detector_score,
                               normalize_first)
        tfeats, uniq = ref_template_features(x, self.templates, self.medias)
        s = ref_pair_scores(tfeats, uniq, self.pairs[:, 0], self.pairs[:, 1])
        labels = self.pairs[:, 2] == 1
        return s, labels, {f: ref_tar_at_far(s, labels, f)[0] for f in far}

    def reference_templates(self, detector_score=True):
        x = ref_input_features(self.image_feats[self.idx], self.scores, detector_score, False)
        tfeats, uniq = ref_template_features(x, self.templates, self.medias)
        return {int(t): f for t, f in zip(uniq, tfeats)}


def build(name, data, **args):
    return registry.build("protocol", {"name": name, **args}, data=str(data))


# --- readers ---------------------------------------------------------------------------------

def test_readers_read_the_published_layout(tmp_path):
    fx = Fixture(tmp_path)
    root = ijb_data.ijb_root(tmp_path / "IJB_release", "ijbc")
    assert root == str(fx.root)
    images = ijb_data.read_ijb_images(root, "ijbc")
    assert [p.rsplit("/", 1)[1] for p in images.paths] == fx.names
    np.testing.assert_array_equal(images.templates, fx.templates)
    np.testing.assert_array_equal(images.medias, fx.medias)
    np.testing.assert_allclose(images.scores, fx.scores)
    assert images.landmarks.shape == (len(fx.names), 5, 2)
    t1, t2, same = ijb_data.read_template_pairs(ijb_data.meta_file(root, "ijbc", "pairs"))
    np.testing.assert_array_equal(np.stack([t1, t2, same], 1), fx.pairs)
    t, s = ijb_data.read_1n_csv(ijb_data.meta_file(root, "ijbc", "G2"))
    assert dict(zip(t.tolist(), s.tolist())) == fx.gallery_sets["G2"]


@pytest.mark.parametrize("edit, message", [
    (("ijbc_face_tid_mid.txt", lambda t: t.replace("0.jpg", "x.jpg", 1)),
     "must list the same images"),
    (("ijbc_name_5pts_score.txt", lambda t: t.replace("\n", " 7\n", 1)), "12"),
    (("ijbc_template_pair_label.txt", lambda t: "101 301 2\n" + t), "is not 0 or 1"),
    (("ijbc_template_pair_label.txt", lambda t: "101 301\n" + t), "three integers"),
    (("ijbc_1N_probe_mixed.csv", lambda t: t + "301,5,img/x.jpg,1\n"), "one subject"),
])
def test_readers_name_the_bad_file(tmp_path, edit, message):
    fx = Fixture(tmp_path)
    fname, change = edit
    path = fx.root / "meta" / fname
    path.write_text(change(path.read_text()))
    with pytest.raises(ValueError, match=message) as err:
        ijb_data.read_ijb_images(str(fx.root), "ijbc")
        ijb_data.read_template_pairs(ijb_data.meta_file(str(fx.root), "ijbc", "pairs"))
        ijb_data.read_1n_csv(ijb_data.meta_file(str(fx.root), "ijbc", "probe"))
    assert fname in str(err.value)


def test_missing_layout_and_unknown_template(tmp_path):
    with pytest.raises(ValueError, match="IJB_release layout"):
        ijb_data.ijb_root(tmp_path, "ijbc")
    fx = Fixture(tmp_path)
    path = fx.root / "meta" / "ijbc_template_pair_label.txt"
    path.write_text(path.read_text() + "101 999 0\n")
    with pytest.raises(Exception, match="template 999"):
        build("ijbc", fx.root).evaluate(fx.embed)


# --- alignment -------------------------------------------------------------------------------

def pattern(x, y):
    return 127.5 + 90.0 * np.sin(x / 6.0) * np.cos(y / 8.0)


@pytest.mark.parametrize("size, template", [(None, ARCFACE_TEMPLATE_112),
                                            ((96, 112), ARCFACE_TEMPLATE_96x112)])
def test_alignment_undoes_a_known_similarity(tmp_path, size, template):
    """A loose crop rendered through a known similarity T (crop pixel p shows the pattern at
    T⁻¹(p)) with landmarks T(template) aligns back to the pattern on the template grid."""
    s, a, t = 1.7, np.deg2rad(17.0), np.array([80.0, 25.0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    yy, xx = np.mgrid[0:300, 0:300].astype(np.float64)
    src = (np.stack([xx - t[0], yy - t[1]], -1) @ np.linalg.inv(rot).T)
    img = np.clip(np.rint(pattern(src[..., 0], src[..., 1])), 0, 255).astype(np.uint8)
    Image.fromarray(np.stack([img] * 3, -1)).save(tmp_path / "face.png")
    landmarks = template @ rot.T + t
    proto = build("ijbc", tmp_path, image_size=size)
    crop = proto._align_one((str(tmp_path / "face.png"), landmarks))
    w, h = (112, 112) if size is None else size
    assert crop.shape == (h, w, 3) and crop.dtype == np.uint8
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    err = np.abs(crop[..., 0].astype(np.float64) - pattern(gx, gy))
    assert err.mean() < 0.5 and err.max() < 2


# --- 1:1 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [{}, {"detector_score": False},
                                     {"detector_score": False, "normalize_first": True}])
def test_ijbc_11_matches_the_insightface_transcription(tmp_path, options):
    fx = Fixture(tmp_path)
    res = build("ijbc", tmp_path / "IJB_release", batch_images=7, **options).evaluate(fx.embed)
    scores, labels, expected = fx.reference_11(**{"detector_score": True, **options})
    assert res["num_pairs"] == len(fx.pairs) and res["num_genuine"] == int(labels.sum())
    assert res["num_images"] == len(fx.rows) and res["num_templates"] == 19
    assert res["tar_at_far"] == pytest.approx(expected, abs=0)
    # The fixture's tie: template 313 copies 301, so its impostor pairs tie with 301's pairs.
    assert len(np.unique(scores)) < len(scores)
    fpr, tpr, _ = roc_curve(scores, labels)
    assert res["auc"] == pytest.approx(_auc(fpr, tpr), abs=1e-12)
    assert res["far_resolution"] == 1 / (~labels).sum()
    # Crops of the configured size reached embed, in batches of batch_images.
    assert fx.calls[0][1] == (7, 112, 112, 3)
    assert sum(c[1][0] for c in fx.calls) == len(fx.rows)


def test_tie_at_the_threshold_is_rejected(tmp_path):
    """At FAR 1/N_imp (k = 1) the threshold s_1 equals s_0 when the two largest impostor scores
    tie: neither is accepted, and a genuine pair with the same score is rejected too."""
    rng = np.random.default_rng(3)
    feats = rng.standard_normal((7, 8))
    feats[1] = feats[0]  # a genuine pair scoring 1
    feats[2] = feats[0] + 0.1 * rng.standard_normal(8)  # the largest impostor score...
    feats[3] = feats[2]  # ... tied by a second impostor
    feats[4] = feats[2]  # ... and by a genuine pair
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    i1, i2 = np.zeros(6, np.int64), np.arange(1, 7)
    labels = np.array([True, False, False, True, False, False])
    s = ijb.score_pairs(feats, i1, i2)
    imp = np.sort(s[~labels])[::-1]
    assert imp[0] == imp[1] == s[3] > imp[2]
    far = 0.25  # k = 1: threshold s_1 = s_0, the tied pairs are all rejected
    tar, thr = ref_tar_at_far(s, labels, far)
    assert thr == s[3] and tar == 0.5
    from tfface.eval.verification import tar_at_far
    assert tar_at_far(s, labels, (far,))[far][0] == tar


@pytest.mark.parametrize("dense", [True, False])
def test_pooling_and_scoring_match_the_transcription(dense):
    rng = np.random.default_rng(1)
    n_img, n_t = 500, 40
    templates = rng.integers(0, n_t, n_img) * 3 + 7  # ids need not be contiguous
    medias = rng.integers(0, 60, n_img)
    feats = rng.standard_normal((n_img, DIM)).astype(np.float32)
    w = rng.uniform(0.1, 1.0, n_img)
    ref, uniq = ref_template_features(feats.astype(np.float64) * w[:, None], templates, medias)
    ids, t_index = np.unique(templates, return_inverse=True)
    pooled = ijb.pool_templates(feats, t_index, medias, ids.shape[0], weights=w, chunk=64)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(pooled, ref, atol=1e-12)
    if dense:
        p1 = np.repeat(uniq[:10], 30)
        p2 = np.tile(uniq[10:], 10)
    else:
        p1, p2 = rng.choice(uniq, 30), rng.choice(uniq, 30)
    i1 = ijb.template_positions(ids, p1, "pairs")
    i2 = ijb.template_positions(ids, p2, "pairs")
    s = ijb.score_pairs(pooled, i1, i2, block_bytes=8 * 30 * 3)  # several blocks
    np.testing.assert_allclose(s, ref_pair_scores(ref, uniq, p1, p2), atol=1e-12)
    with pytest.raises(ValueError, match="template 8"):
        ijb.template_positions(ids, np.r_[p1, 8], "pairs")
    # Ids outside the lookup table's range take the searchsorted path.
    big = np.array([-5, 3, 10 ** 12])
    np.testing.assert_array_equal(ijb.template_positions(big, np.array([3, 10 ** 12, -5]), "x"),
                                  [1, 2, 0])
    with pytest.raises(ValueError, match="x names template 4"):
        ijb.template_positions(big, np.array([3, 4]), "x")


def test_roc_points_are_vertices_of_the_full_roc():
    rng = np.random.default_rng(2)
    s = np.round(rng.standard_normal(20000), 2)
    labels = rng.random(20000) < 0.1
    s[labels] += 1.0
    fpr, tpr, thr, auc = ijb.roc_points(s, labels, max_points=50)
    f_all, t_all, th_all = roc_curve(s, labels)
    assert len(fpr) <= 52 and fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    pos = np.searchsorted(-th_all[1:], -thr[1:]) + 1
    np.testing.assert_array_equal(th_all[pos], thr[1:])
    np.testing.assert_allclose(f_all[pos], fpr[1:])
    np.testing.assert_allclose(t_all[pos], tpr[1:])
    assert auc == pytest.approx(_auc(f_all, t_all), abs=1e-12)
    # A genuine pair below every impostor: the curve still ends at (1, 1).
    fpr, tpr, thr, _ = ijb.roc_points(np.r_[s, -10.0], np.r_[labels, True])
    assert fpr[-1] == tpr[-1] == 1 and thr[-1] == -10.0


def test_other_modes_reach_embed(tmp_path):
    fx = Fixture(tmp_path)
    seen = []

    def embed(images, key):
        seen.append(images)
        return fx.embed(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in images]),
                        key) if isinstance(images, list) else fx.embed(images, key)

    build("ijbc", fx.root, mode="none").evaluate(embed)
    assert isinstance(seen[0], list) and seen[0][0].endswith(".jpg")
    seen.clear()
    build("ijbc", fx.root, mode="facenet", image_size=64, margin=8).evaluate(embed)
    assert seen[0].shape[1:] == (64, 64, 3)
    with pytest.raises(registry.RegistryError, match="mode"):
        build("ijbc", fx.root, mode="mtcnn")


# --- 1:N -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ijbc", "ijbb"])
def test_1n_matches_the_open_set_transcription(tmp_path, name):
    fx = Fixture(tmp_path, name=name, seed=5)
    res = build(f"{name}_1n", fx.root).evaluate(fx.embed)
    tf = fx.reference_templates()
    p_t = np.array(list(fx.probes))
    p_f = np.stack([tf[t] for t in p_t])
    p_s = np.array([fx.probes[t] for t in p_t])
    per = {}
    for g, members in fx.gallery_sets.items():
        g_t = np.array(list(members))
        per[g] = ref_open_set(p_f, p_s, np.stack([tf[t] for t in g_t]),
                              np.array([members[t] for t in g_t]), (1, 5, 10), (1e-2, 1e-1))
        got = res["galleries"][g]
        for k in (1, 5, 10):
            assert got[f"rank{k}"] == pytest.approx(per[g][f"rank{k}"], abs=0)
        assert got["tpir_at_fpir"] == pytest.approx(per[g]["tpir_at_fpir"], abs=0)
        assert got["num_mated"] + got["num_nonmated"] == len(p_t)
    for k in (1, 5, 10):
        assert res[f"rank{k}"] == pytest.approx(np.mean([per[g][f"rank{k}"] for g in per]))
    for f in (1e-2, 1e-1):
        assert res["tpir_at_fpir"][f] == pytest.approx(
            np.mean([per[g]["tpir_at_fpir"][f] for g in per]))
    assert set(res["galleries"]) == set(fx.galleries)

    one = build(f"{name}_1n", fx.root, gallery=fx.galleries[1]).evaluate(fx.embed)
    assert one["rank1"] == per[fx.galleries[1]]["rank1"]

    union = build(f"{name}_1n", fx.root, gallery="union").evaluate(fx.embed)
    all_members = {**fx.gallery_sets[fx.galleries[0]], **fx.gallery_sets[fx.galleries[1]]}
    g_t = np.array(list(all_members))
    ref = ref_open_set(p_f, p_s, np.stack([tf[t] for t in g_t]),
                       np.array([all_members[t] for t in g_t]), (1, 5, 10), ())
    assert union["rank1"] == ref["rank1"] and union["rank5"] == ref["rank5"]
    assert "tpir_at_fpir" not in union and union["num_nonmated"] == 0


def test_open_set_ranks_agree_with_identify():
    from tfface.eval.identification import identify

    rng = np.random.default_rng(4)
    g = rng.standard_normal((30, DIM))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    g_s = np.arange(30)
    p_s = rng.integers(0, 45, 200)
    p = np.where((p_s < 30)[:, None], g[np.minimum(p_s, 29)], 0) + 0.8 * rng.standard_normal(
        (200, DIM))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    res = ijb.open_set_identification(p, p_s, g, g_s, (1, 5, 10), (1e-2, 1e-1), chunk=17)
    mated = p_s < 30
    ref = identify(p[mated], p_s[mated], g, g_s, protocol="closed", ranks=(1, 5, 10), far=())
    np.testing.assert_array_equal(res["query_ranks"], ref["query_ranks"])
    assert res["num_nonmated"] == (~mated).sum()
    assert res["tpir_at_fpir"] == pytest.approx(
        ref_open_set(p, p_s, g, g_s, (1,), (1e-2, 1e-1))["tpir_at_fpir"], abs=0)


def test_runner_end_to_end_with_flip_sum(tmp_path):
    """Through tfface's runner and extractor (TensorFlow's input pipeline) with flip="sum": a
    uniform crop and its mirror give the same feature, so the sum doubles it and the metrics are
    the transcription's."""
    from tfface.eval.protocols import evaluate_protocol

    fx = Fixture(tmp_path)

    def model(x):
        x = np.asarray(x)
        h, w = x.shape[1:3]
        return fx.image_feats[[index_of(im[h // 2, w // 2]) for im in x]]

    res = evaluate_protocol("ijbc", str(fx.root), model, flip="sum", batch_images=16)
    assert res["tar_at_far"] == pytest.approx(fx.reference_11()[2], abs=1e-12)

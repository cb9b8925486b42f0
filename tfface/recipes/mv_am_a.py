"""MV-Softmax paper, Table 3 row "MV-AM-Softmax-a (0.2)" (Ours).

Paper: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
Softmax Loss for Face Recognition", AAAI 2020; § "Experimental Settings", results in Tables 3,
4 and 5 (t chosen in Table 2).

Loss: eq. 6 with the AM margin f = cos θ_y − 0.35 and the adaptive re-weighting of
eq. 8, t = 0.2 (Table 2).

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Table 3 (LFW, CALFW, CPLFW, AgeDB, CFP):
    tfface eval --model runs/mv_am_a --protocol lfw --data DATA_LFW --protocol calfw --data DATA_CALFW --protocol cplfw --data DATA_CPLFW --protocol agedb_30 --data DATA_AGEDB_30 --protocol cfp_fp --data DATA_CFP_FP --out runs/mv_am_a/eval
- Table 4 (RFW):
    tfface eval --model runs/mv_am_a --protocol rfw_african --data DATA_RFW_AFRICAN --protocol rfw_asian --data DATA_RFW_ASIAN --protocol rfw_caucasian --data DATA_RFW_CAUCASIAN --protocol rfw_indian --data DATA_RFW_INDIAN --out runs/mv_am_a/eval
- Table 5 (MegaFace; the Trillion-Pairs columns have no protocol in tfface):
    tfface eval --model runs/mv_am_a --protocol megaface --data DATA_MEGAFACE --out runs/mv_am_a/eval

Base: MV_SOFTMAX in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mv_am_a --workdir runs/mv_am_a
"""
from tfface.recipes._bases import MV_SOFTMAX

RECIPE = MV_SOFTMAX.derive(
    name="mv_am_a",
    cite="Wang et al., MV-Softmax (AAAI 2020), § Experimental Settings, Tables 2-5",
    description="MV-Softmax Table 3: MV-AM-Softmax-a (0.2), AttentionNet-IRSE, MS1M-v1c-R",
    head={"name": "mv_softmax", "scale": 32.0, "margin": 0.35, "t": 0.2, "margin_type": "am", "adaptive": True},
)

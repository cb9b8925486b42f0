"""MV-Softmax paper, Table 3 row "Arc-Softmax" (Margin-based).

Paper: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
Softmax Loss for Face Recognition", AAAI 2020; § "Experimental Settings", results in Tables 3,
4 and 5 (t chosen in Table 2).

Loss: eq. 3 with f(m3, θ) = cos(θ + m3), m3 = 0.5, s = 32 (ArcFace).

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Table 3 (LFW, CALFW, CPLFW, AgeDB, CFP):
    tfface eval --model runs/mv_arc_softmax --protocol lfw --data DATA_LFW --protocol calfw --data DATA_CALFW --protocol cplfw --data DATA_CPLFW --protocol agedb_30 --data DATA_AGEDB_30 --protocol cfp_fp --data DATA_CFP_FP --out runs/mv_arc_softmax/eval
- Table 4 (RFW):
    tfface eval --model runs/mv_arc_softmax --protocol rfw_african --data DATA_RFW_AFRICAN --protocol rfw_asian --data DATA_RFW_ASIAN --protocol rfw_caucasian --data DATA_RFW_CAUCASIAN --protocol rfw_indian --data DATA_RFW_INDIAN --out runs/mv_arc_softmax/eval
- Table 5 (MegaFace; the Trillion-Pairs columns have no protocol in tfface):
    tfface eval --model runs/mv_arc_softmax --protocol megaface --data DATA_MEGAFACE --out runs/mv_arc_softmax/eval

Base: MV_SOFTMAX in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mv_arc_softmax --workdir runs/mv_arc_softmax
"""
from tfface.recipes._bases import MV_SOFTMAX

RECIPE = MV_SOFTMAX.derive(
    name="mv_arc_softmax",
    cite="Wang et al., MV-Softmax (AAAI 2020), § Experimental Settings, Tables 2-5",
    description="MV-Softmax Table 3: Arc-Softmax, AttentionNet-IRSE, MS1M-v1c-R",
    head={"name": "arcface", "scale": 32.0, "margin": 0.5},
)

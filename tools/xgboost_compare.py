#!/usr/bin/env python3
"""XGBoost on the same features as `tirhub risk evaluate`, for the ratio in
docs/risk.md. Not part of the build or of CI.

    python3 -m venv /var/tmp/xgb && /var/tmp/xgb/bin/pip install xgboost-cpu pandas
    tirhub risk evaluate --data bacuda.csv --test-from 2014-07-16 --features-out feats.csv
    /var/tmp/xgb/bin/python tools/xgboost_compare.py feats.csv [--threads 2]

Prints precision and revenue share at 5 % inspected, AUC and training seconds
(the same definitions as tir-risk's eval.rs: top round(5 % of n), at least 1).
Training seconds include building the DMatrix from the frame. With
--revenue-head it also trains tir-risk's second head (squared error on
ln(1 + revenue) of the irregular training rows, half the rounds, depth 4) and ranks by
ln p + 0.1 * that, as `RiskModel::rank` does; training seconds then cover both.
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
import xgboost as xgb


def at_share(scores, illicit, revenue, share):
    k = max(1, int(round(len(scores) * share)))
    # Descending score, ties by row order, as eval.rs ranks.
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return illicit[order].sum() / k, revenue[order].sum() / max(revenue.sum(), 1e-12)


def auc(scores, illicit):
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    p = illicit.sum()
    n = len(illicit) - p
    return (ranks[illicit == 1].sum() - p * (p + 1) / 2) / (p * n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("features")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--revenue-head", action="store_true")
    args = ap.parse_args()
    df = pd.read_csv(args.features)
    test = df["test"] == 1
    x = df.drop(columns=["illicit", "revenue", "test"])
    y = df["illicit"].to_numpy()
    rev = df["revenue"].to_numpy()
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "tree_method": "hist",
              "nthread": args.threads}
    t = time.perf_counter()
    train = xgb.DMatrix(x[~test], label=y[~test])
    model = xgb.train(params, train, num_boost_round=args.trees)
    head = None
    if args.revenue_head:
        irregular = (~test) & (df["illicit"] == 1)
        target = np.log1p(np.maximum(rev[irregular.to_numpy()], 0))
        # As `revenue_params`: half the rounds, depth 4.
        head = xgb.train(dict(params, objective="reg:squarederror", max_depth=4),
                         xgb.DMatrix(x[irregular], label=target), num_boost_round=(args.trees + 1) // 2)
    train_seconds = time.perf_counter() - t
    t = time.perf_counter()
    test_x = xgb.DMatrix(x[test])
    scores = model.predict(test_x)
    if head is not None:
        scores = np.log(np.maximum(scores, 1e-300)) + 0.1 * np.maximum(head.predict(test_x), 0)
    score_seconds = time.perf_counter() - t
    p5, r5 = at_share(scores, y[test], rev[test], 0.05)
    print(json.dumps({
        "train_rows": int((~test).sum()),
        "test_rows": int(test.sum()),
        "precision_5": round(float(p5), 4),
        "revenue_5": round(float(r5), 4),
        "auc": round(float(auc(scores, y[test])), 4),
        "train_seconds": round(train_seconds, 3),
        "score_per_s": round(test.sum() / score_seconds),
        "threads": args.threads,
        "revenue_head": args.revenue_head,
    }))


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""The README's tables of ``hourglass compare`` results, from a run's ``comparison.csv``.

    hourglass compare --data digits --latent-dim 2 --methods pca,kernel-pca,isomap,lle,tsne,ae,vae,aae --out cmp-digits
    python benchmarks/compare_table.py cmp-digits/comparison.csv

prints the rows (the lowest reconstruction error in bold), in the README's column order: method, fit s,
recon MSE, kNN acc, probe acc, trustworthiness, continuity, NMI.
"""

from __future__ import annotations

import csv
import sys

NAMES = {"pca": "PCA", "kernel-pca": "kernel PCA", "lda": "LDA (uses labels)", "isomap": "Isomap", "lle": "LLE",
         "tsne": "t-SNE (training embedding)", "umap": "UMAP", "aae": "aae (Gaussian prior)"}
HEAD = ("| method | fit s | recon MSE | kNN acc | probe acc | trustworthiness | continuity | NMI |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|")


def cell(value: str, digits: int = 3) -> str:
    return "-" if value == "" else f"{float(value):.{digits}f}"


def table(path: str) -> str:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    best = min((float(r["recon_mse"]) for r in rows if r["recon_mse"]), default=None)
    lines = [HEAD]
    for r in rows:
        mse = cell(r["recon_mse"], 4)
        if r["recon_mse"] and float(r["recon_mse"]) == best:
            mse = f"**{mse}**"
        lines.append(f"| {NAMES.get(r['method'], r['method'])} | {float(r['fit_seconds']):.2f} | {mse} | "
                     f"{cell(r['knn_acc'])} | {cell(r['probe_acc'])} | {cell(r['trustworthiness'])} | "
                     f"{cell(r['continuity'])} | {cell(r['kmeans_nmi'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(table(p))

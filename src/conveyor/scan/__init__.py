"""Scan report: Trivy JSON in; gate, SARIF and a summary out."""

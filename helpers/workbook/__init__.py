"""The workbook's plumbing: running the notebooks (`notebooks`: papermill, quick / standard / full), their saved
results with provenance (`results`), the report (`report`: HTML pages and the PDF) and shared plots (`plotting`).
"""

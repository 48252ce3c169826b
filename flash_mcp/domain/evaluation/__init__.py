"""Evaluations: the record contract (record.py) shared by the evaluate job, readers and statistics."""

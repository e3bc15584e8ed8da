"""Worker-side halves of the checks: run the student's answer on inputs, return plain data.

Each ``exN_*.py`` here holds the input builders and the *probes* of one exercise. A probe is
``probe(call, answers, **params) -> plain data`` (numbers, strings, lists, dicts, numpy arrays):
it builds its inputs from ``params``, calls the student's code through ``call`` and reports what
it saw. The judgement (what is right, which mistake it was) lives in ``skinlab.grading.exN_*``.

This package must import nothing from ``skinlab``: it runs inside the grading worker, where
``skinlab`` is not importable, as well as in the student's kernel (where ``skinlab.grading`` runs
it in-process for quick feedback). Only numpy, pandas and torch.
"""

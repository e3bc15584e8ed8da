"""Reading and validating HAM10000's metadata csv (Kaggle 7-column or Dataverse form)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from skinlab.data.images import find_images
from skinlab.data.layout import (
    CLASS_TO_INDEX,
    CLASSES,
    ENV_VAR,
    IMAGE_FOLDERS,
    KAGGLE_COLUMNS,
    METADATA_FILE,
    REQUIRED_COLUMNS,
    DataError,
)


def _sniff_delimiter(text: str, path: Path) -> str:
    header = text.splitlines()[0] if text.strip() else ""
    # Dataverse serves an ingested tab-separated copy; spreadsheets write ';'. Accept all three.
    counts = {d: header.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        raise DataError(
            f"{path}: the header line {header[:80]!r} has no ',', ';' or tab delimiter; "
            f"expected columns {', '.join(KAGGLE_COLUMNS)}"
        )
    return best


def metadata_problems(df: pd.DataFrame, source: str = "metadata") -> list[str]:
    """Every problem in an already-parsed metadata table, one readable line each.

    Row numbers are csv line numbers (header = line 1), so a learner can open the file there.
    """
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        return [
            f"{source}: missing required column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, df.columns))}"
        ]
    if len(df) == 0:
        return [f"{source}: has a header but no rows"]
    line = lambda i: int(i) + 2  # noqa: E731  (pandas index 0 is csv line 2)

    for col in REQUIRED_COLUMNS:
        empty = df.index[df[col].isna() | (df[col].astype(str).str.strip() == "")]
        for i in empty[:20]:
            problems.append(f"{source}, line {line(i)}: empty {col}")
        if len(empty) > 20:
            problems.append(f"{source}: … and {len(empty) - 20} more rows with an empty {col}")

    dx = df["dx"].astype(str).str.strip().str.lower()
    unknown = df.index[~dx.isin(CLASSES) & df["dx"].notna()]
    for i in unknown[:20]:
        problems.append(
            f"{source}, line {line(i)}: unknown dx {df.at[i, 'dx']!r} "
            f"(expected one of {', '.join(CLASSES)})"
        )
    if len(unknown) > 20:
        problems.append(f"{source}: … and {len(unknown) - 20} more rows with an unknown dx")

    dup = df["image_id"].duplicated(keep=False) & df["image_id"].notna()
    for image_id, rows in df[dup].groupby("image_id").groups.items():
        lines = ", ".join(str(line(i)) for i in rows)
        problems.append(f"{source}: image_id {image_id} appears more than once (lines {lines})")

    ok = df["lesion_id"].notna() & dx.isin(CLASSES)
    per_lesion = dx[ok].groupby(df.loc[ok, "lesion_id"]).agg(lambda s: sorted(set(s)))
    for lesion, labels in per_lesion.items():
        if len(labels) > 1:
            problems.append(
                f"{source}: lesion {lesion} has images with different diagnoses "
                f"({', '.join(labels)}); one lesion has one diagnosis"
            )

    if "age" in df.columns:
        age = pd.to_numeric(df["age"], errors="coerce")
        bad = df.index[age.isna() & df["age"].notna() & (df["age"].astype(str).str.strip() != "")]
        for i in bad[:20]:
            problems.append(f"{source}, line {line(i)}: age {df.at[i, 'age']!r} is not a number")
        out = df.index[(age < 0) | (age > 120)]
        for i in out[:20]:
            problems.append(f"{source}, line {line(i)}: age {df.at[i, 'age']!r} is out of range")
    return problems


def _parse_metadata_csv(csv_path: Path) -> pd.DataFrame:
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: metadata file not found")
    raw = csv_path.read_bytes()
    if not raw.strip():
        raise DataError(f"{csv_path}: the metadata file is empty")
    text = raw.decode("utf-8-sig", errors="replace")
    delimiter = _sniff_delimiter(text, csv_path)
    try:
        df = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=True)
    except (pd.errors.ParserError, csv.Error) as exc:
        raise DataError(f"{csv_path}: cannot parse as csv: {exc}") from None
    df.columns = [str(c).strip().strip('"') for c in df.columns]
    return df


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in ("lesion_id", "image_id", "dx"):
        df[col] = df[col].astype(str).str.strip()
    df["dx"] = df["dx"].str.lower()
    if "age" in df.columns:
        df["age"] = pd.to_numeric(df["age"], errors="coerce")  # missing ages are real (57 rows)
    else:
        df["age"] = np.nan
    for col in ("sex", "localization", "dx_type"):
        if col not in df.columns:
            df[col] = "unknown"
        df[col] = df[col].fillna("unknown").astype(str).str.strip().replace("", "unknown")
    df["label"] = df["dx"].map(CLASS_TO_INDEX).astype("int64")
    return df.reset_index(drop=True)


def read_metadata(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a HAM10000 metadata csv (Kaggle 7-column or Dataverse form).

    Adds a ``label`` column (index into :data:`CLASSES`). Raises :class:`DataError` naming the
    file and line of the first problems found.
    """
    csv_path = Path(csv_path)
    df = _parse_metadata_csv(csv_path)
    problems = metadata_problems(df, str(csv_path))
    if problems:
        more = f" (and {len(problems) - 1} more problems; run `skinlab data check`)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    return _normalise(df)


def metadata_csv_path(root: str | os.PathLike) -> Path:
    root = Path(root)
    if root.is_file():
        return root
    candidate = root / METADATA_FILE
    if candidate.is_file():
        return candidate
    others = sorted(root.glob("*metadata*.csv")) + sorted(root.glob("*metadata*.tab"))
    if others:
        return others[0]
    raise DataError(
        f"{root}: no {METADATA_FILE} here. Point to a HAM10000 folder (see `skinlab data check`) "
        f"or set {ENV_VAR}."
    )


def load_metadata(root: str | os.PathLike, check_images: bool = True) -> pd.DataFrame:
    """Validated metadata of the dataset in ``root`` with ``label`` and ``path`` columns.

    With ``check_images`` every listed image must exist; a missing one is a :class:`DataError`.
    """
    root = Path(root)
    csv_path = metadata_csv_path(root)
    df = read_metadata(csv_path)
    images = find_images(csv_path.parent)
    df["path"] = df["image_id"].map(lambda i: str(images[i]) if i in images else None)
    if check_images:
        missing = df.loc[df["path"].isna(), "image_id"].tolist()
        if missing:
            shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
            raise DataError(
                f"{csv_path}: {len(missing)} image(s) listed in the metadata are missing "
                f"from {', '.join(IMAGE_FOLDERS)}: {shown}"
            )
    return df


def summarize(metadata: pd.DataFrame) -> dict:
    """Counts a learner wants first: images, lesions and images per class in class order."""
    counts = metadata["dx"].value_counts()
    return {
        "images": int(len(metadata)),
        "lesions": int(metadata["lesion_id"].nunique()),
        "classes": {c: int(counts.get(c, 0)) for c in CLASSES},
    }


def labels_of(metadata: pd.DataFrame) -> np.ndarray:
    return metadata["label"].to_numpy(dtype=np.int64)


def subset(metadata: pd.DataFrame, split: pd.Series, name: str) -> pd.DataFrame:
    """Rows of ``metadata`` whose split is ``name`` (index reset)."""
    return metadata[split.reindex(metadata.index) == name].reset_index(drop=True)

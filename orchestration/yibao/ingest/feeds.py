"""The source feeds the warehouse accepts: our own copy of the source contract.

Each field has a type that the door checks before a record enters the raw layer.
Personal fields are listed apart: they never pass the door as they came.
"""

from __future__ import annotations

from dataclasses import dataclass

# Types at the door: each maps to the DuckDB type of the raw column and to a check.
DUCKDB_TYPES = {
    "str": "VARCHAR",
    "code6": "VARCHAR",  # a 6-digit GB/T 2260 administrative division code
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "dec": "DECIMAL(18,2)",
    "int": "BIGINT",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "str"
    required: bool = False


@dataclass(frozen=True)
class Feed:
    name: str
    fields: tuple[Field, ...]
    # Certificate numbers become a keyed pseudonym; names are dropped (PIPL).
    pseudonymise: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    description: str = ""

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def personal(self) -> set[str]:
        return set(self.pseudonymise) | set(self.drop)


FEEDS: dict[str, Feed] = {
    "psn_insu": Feed(
        name="psn_insu",
        description="enrollment (参保登记), changes per period; latest updt_time wins",
        fields=(
            Field("psn_no", required=True),
            Field("psn_cert_type"),
            Field("certno"),
            Field("psn_name"),
            Field("gend"),
            Field("brdy", "date"),
            Field("insutype", required=True),
            Field("psn_type"),
            Field("psn_insu_stas", required=True),
            Field("psn_insu_date", "date"),
            Field("paus_insu_date", "date"),
            Field("insuplc_admdvs", "code6", required=True),
            Field("updt_time", "timestamp", required=True),
        ),
        pseudonymise=("certno",),
        drop=("psn_name",),
    ),
    "population": Feed(
        name="population",
        description="resident population (常住人口) per region and year",
        fields=(
            Field("admdvs", "code6", required=True),
            Field("year", "int", required=True),
            Field("resident_pop", "int", required=True),
        ),
    ),
}

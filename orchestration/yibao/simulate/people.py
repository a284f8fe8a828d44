"""The simulated population: one entry per person × region of enrollment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Enrollments:
    """Columns of the enrollment population, one entry per person × region."""

    psn_no: np.ndarray
    certno: np.ndarray
    psn_name: np.ndarray
    gend: np.ndarray
    brdy: np.ndarray  # datetime64[D]
    insutype: np.ndarray
    psn_type: np.ndarray
    psn_insu_date: np.ndarray  # datetime64[D]
    admdvs: np.ndarray

    def __len__(self) -> int:
        return len(self.psn_no)

    def take(self, idx: np.ndarray) -> Enrollments:
        return Enrollments(**{k: v[idx] for k, v in self.__dict__.items()})

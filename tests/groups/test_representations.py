import math

import numpy as np
import pytest
import torch

from fivefold.errors import GroupError
from fivefold.groups import (
    SO2,
    cube_rotations,
    cyclic,
    dihedral,
    irreps,
    regular_representation,
    so2_irrep,
    trivial_representation,
)


def _is_homomorphism(rep):
    group = rep.group
    m = rep.matrices.numpy()
    for a in group.elements:
        for b in group.elements:
            np.testing.assert_allclose(m[group.compose(a, b)], m[a] @ m[b], atol=1e-12)


@pytest.mark.parametrize("group", [cyclic(1), cyclic(4), cyclic(5), cyclic(8), dihedral(3), dihedral(4), dihedral(8)],
                         ids=repr)
def test_irreps_are_irreducible_homomorphisms_and_complete(group):
    found = irreps(group)
    for rep in found:
        _is_homomorphism(rep)
    # real irreps of C_n / D_n are absolutely irreducible (D_n) or of complex type (C_n, 2D): <chi, chi> = 1 or 2
    norms = [float(rep.character() @ rep.character()) / group.order for rep in found]
    expected_norm = [1.0 if rep.dim == 1 or group.family == "dihedral" else 2.0 for rep in found]
    np.testing.assert_allclose(norms, expected_norm, atol=1e-9)
    # distinct irreps have orthogonal characters
    chars = np.stack([rep.character() for rep in found])
    gram = chars @ chars.T / group.order
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-9)
    # the regular representation contains every irrep: sum over irreps of dim * multiplicity = |G|
    regular = regular_representation(group).character()
    total = sum(rep.dim * round(float(regular @ rep.character()) / group.order / norm)
                for rep, norm in zip(found, expected_norm, strict=True))
    assert total == group.order


@pytest.mark.parametrize("group", [cyclic(4), dihedral(4), cube_rotations()], ids=repr)
def test_regular_and_trivial_representations(group):
    _is_homomorphism(regular_representation(group))
    _is_homomorphism(trivial_representation(group))
    rho = regular_representation(group)
    for g in group.elements:
        basis = torch.zeros(group.order, dtype=torch.float64)
        basis[1 % group.order] = 1.0
        assert int((rho(g) @ basis).argmax()) == group.compose(g, 1 % group.order)


def test_so2_irreps():
    so2 = SO2()
    rho = so2_irrep(3)
    for a, b in [(0.3, 1.2), (2.0, -4.0), (math.pi, math.pi / 3)]:
        torch.testing.assert_close(rho(so2.compose(a, b)), rho(a) @ rho(b))
        torch.testing.assert_close(rho(so2.inverse(a)), rho(a).T)
    assert so2_irrep(0)(1.0).shape == (1, 1)
    with pytest.raises(GroupError):
        so2_irrep(-1)
    with pytest.raises(GroupError):
        irreps(cube_rotations())

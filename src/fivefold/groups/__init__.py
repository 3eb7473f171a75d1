"""Symmetry groups as data: finite groups of rotations and reflections, their representations, and their action on
grids; SO(3) and O(3) with their irreps, real spherical harmonics and Clebsch-Gordan coefficients. Shared by the
grid, sphere, mesh and molecule domains.

Example::

    >>> from fivefold.groups import cyclic, regular_representation
    >>> c4 = cyclic(4)
    >>> c4.order, c4.compose(1, 3), c4.inverse(1)
    (4, 0, 3)
    >>> regular_representation(c4)(1).shape
    torch.Size([4, 4])
    >>> from fivefold.groups import regular_field, trivial_field
    >>> regular_field(c4, 8) + trivial_field(c4, 2)     # a field type: how the group acts on channels
    8×regular(C4) ⊕ 2×trivial
"""

from fivefold.groups.action import Action
from fivefold.groups.fields import FieldType, irreps_field, regular_field, trivial_field
from fivefold.groups.finite import (
    FiniteGroup,
    cube_rotations,
    cube_symmetries,
    cyclic,
    dihedral,
    icosahedral_rotations,
    trivial,
)
from fivefold.groups.grid import act_on_grid, permute_group_axis, rotate_images, transform_grid
from fivefold.groups.o3 import (
    O3,
    SO3,
    clebsch_gordan,
    irrep_slices,
    o3_irrep,
    o3_irreps,
    so3_irrep,
    spherical_harmonics,
    wigner_D,
)
from fivefold.groups.permutations import SymmetricGroup
from fivefold.groups.representations import (
    SO2,
    Representation,
    irreps,
    regular_representation,
    so2_irrep,
    trivial_representation,
)
from fivefold.groups.rotations import random_rotation, random_rotations
from fivefold.groups.so2 import so2_band_field, so2_frequencies, so2_rotate

__all__ = [
    "FiniteGroup", "cyclic", "dihedral", "cube_rotations", "cube_symmetries", "icosahedral_rotations", "trivial",
    "Action", "FieldType", "trivial_field", "regular_field", "irreps_field",
    "Representation", "trivial_representation", "regular_representation", "irreps", "SO2", "so2_irrep",
    "so2_frequencies", "so2_band_field", "so2_rotate",
    "SymmetricGroup", "random_rotation", "random_rotations",
    "SO3", "O3", "o3_irrep", "so3_irrep", "o3_irreps", "spherical_harmonics", "wigner_D", "clebsch_gordan",
    "irrep_slices",
    "transform_grid", "rotate_images", "act_on_grid", "permute_group_axis",
]

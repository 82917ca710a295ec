"""Small fake raw datasets written the way the real ones are stored, for the prepare tests.

ACDC: NIfTI int16 images and uint8 labels, 1.5625 x 1.5625 x 10 mm, several in-plane shapes,
the last (apex) slice without any label. PROMISE12: MetaImage .mhd/.raw via SimpleITK.
MSD: 4-D NIfTI (X, Y, Z, 2) and labels {0, 1, 2}. Each structure is drawn at a known,
off-centre position so that the tests can check the slicing orientation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPES = [(40, 48), (48, 40), (44, 44)]


def blob_labels(shape_xy, n_slices, centre_frac, classes, empty_last=True):
    """Concentric disks (outer class first) at centre_frac of (axis 0, axis 1); (X, Y, Z)."""
    x, y = np.meshgrid(np.arange(shape_xy[0]), np.arange(shape_xy[1]), indexing="ij")
    cx, cy = centre_frac[0] * shape_xy[0], centre_frac[1] * shape_xy[1]
    r = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    label = np.zeros((*shape_xy, n_slices), dtype=np.uint8)
    radii = np.linspace(0.22, 0.1, len(classes)) * min(shape_xy)
    for z in range(n_slices - (1 if empty_last else 0)):
        for c, radius in zip(classes, radii, strict=True):
            label[..., z][r < radius * (1 - 0.1 * z)] = c
    return label


def image_from_labels(label, rng, scale=300):
    """int16 intensities that grow with the class, plus noise."""
    noise = rng.normal(0, 10, label.shape)
    return (100 + scale * label.astype(np.float64) + noise).astype(np.int16)


def write_nifti(path: Path, data: np.ndarray, zooms=(1.5625, 1.5625, 10.0)):
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*zooms[:3], 1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(data.dtype)
    img.header.set_zooms(tuple(zooms) + (1.0,) * (data.ndim - 3))
    nib.save(img, str(path))


def make_fake_acdc(root: Path, n_patients: int = 6, seed: int = 0, testing: int = 1) -> Path:
    """root/database/{training,testing}/patientNNN/patientNNN_frameNN[_gt].nii.gz + Info.cfg."""
    rng = np.random.default_rng(seed)
    for i in range(1, n_patients + testing + 1):
        folder = "training" if i <= n_patients else "testing"
        pdir = root / "database" / folder / f"patient{i:03d}"
        pdir.mkdir(parents=True, exist_ok=True)
        (pdir / "Info.cfg").write_text("ED: 1\nES: 12\n")
        shape = SHAPES[i % len(SHAPES)]
        for frame in (1, 12):
            label = blob_labels(shape, 4 + i % 2, (0.35, 0.6), (1, 2, 3))
            write_nifti(pdir / f"patient{i:03d}_frame{frame:02d}_gt.nii.gz", label)
            write_nifti(
                pdir / f"patient{i:03d}_frame{frame:02d}.nii.gz", image_from_labels(label, rng)
            )
        write_nifti(pdir / f"patient{i:03d}_4d.nii.gz", np.zeros((*shape, 2, 3), np.int16))
    return root


def make_fake_promise12(root: Path, n_cases: int = 6, seed: int = 0) -> Path:
    """root/training_data/CaseNN.mhd/.raw and CaseNN_segmentation.mhd/.raw (SimpleITK)."""
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    folder = root / "training_data"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_cases):
        shape = SHAPES[i % len(SHAPES)]
        # array (Z, Y, X): draw in (Y, X) at 0.35 of Y and 0.6 of X
        label_xyz = blob_labels(shape, 5, (0.35, 0.6), (1,))
        label = np.moveaxis(label_xyz, -1, 0).astype(np.int8)
        image = image_from_labels(label, rng)
        for name, arr in ((f"Case{i:02d}", image), (f"Case{i:02d}_segmentation", label)):
            img = sitk.GetImageFromArray(arr)
            img.SetSpacing((0.625, 0.625, 3.6))
            sitk.WriteImage(img, str(folder / f"{name}.mhd"))
    return root


def make_fake_msd(root: Path, n_cases: int = 6, seed: int = 0) -> Path:
    """root/Task05_Prostate/{imagesTr,labelsTr}/prostate_NN.nii.gz (+ a macOS `._` file)."""
    rng = np.random.default_rng(seed)
    task = root / "Task05_Prostate"
    for i in range(n_cases):
        shape = SHAPES[i % len(SHAPES)]
        label = blob_labels(shape, 4, (0.35, 0.6), (1, 2))
        t2 = image_from_labels(label, rng)
        adc = (2000 - t2).astype(np.int16)  # a second modality with reversed contrast
        image = np.stack([t2, adc], axis=-1)
        write_nifti(task / "imagesTr" / f"prostate_{i:02d}.nii.gz", image, (0.6, 0.6, 3.6))
        write_nifti(task / "labelsTr" / f"prostate_{i:02d}.nii.gz", label, (0.6, 0.6, 3.6))
    (task / "imagesTr" / "._prostate_00.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    return root

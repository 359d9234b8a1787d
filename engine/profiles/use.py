"""Profiles at restore time: each face that shows a profile's person gets that person's adapter
and references; every other face is restored exactly as without profiles.

``--profile auto`` (the GUI's default) considers every profile; ``--profile NAME`` one. Which face
is whose is ``match.match_face``'s decision. A matched face too damaged to show who it is is
guided toward the profile's references, as reference photos would guide it
(``references.ReferenceSet``); any other matched face is restored by the adapter-folded network
(``Networks.personalised``) when the profile has an adapter for the model in use.

The guided faces keep the unpersonalised network: under the references' guidance the adapter
lowered identity (10 held-out people, severe faces, the profile's own references; two runs:
evaluator −0.008 ± 0.025 and −0.016 ± 0.033 against the same guidance on the plain network, 3
of 10 people up in each; docs/personalisation.md), while without references it raises it
(+0.047), and on moderate faces, which the guidance mostly leaves alone, it adds +0.006 (10 of
10 people up). A profile never makes its person's face less like them than their references alone do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from ..errors import LikenessError
from ..faces.detect import DetectedFace
from ..identity import make_embedder
from ..references import ReferenceSet
from ..references.use import FinishGuided, GuidanceSettings, PlainRestore
from .build import profile_references
from .match import LoadedProfile, match_face
from .store import Profile, ProfileError, ProfileStore

AUTO = "auto"


class ProfileSet:
    """The profiles one restoration considers (all of them for ``auto``, else the named one)."""

    def __init__(self, profiles: Sequence[LoadedProfile], named: str | None, settings: GuidanceSettings) -> None:
        self.profiles = list(profiles)
        self.named = named
        self.settings = replace(settings, explain_gate=False)
        self.used: set[str] = set()

    @classmethod
    def prepare(
        cls,
        option: str,
        settings: GuidanceSettings,
        load: Callable[[Profile], LoadedProfile],
        store: ProfileStore | None = None,
    ) -> ProfileSet:
        """``option``: "auto" or a profile's name (ProfileError when there is no such profile)."""
        store = store or ProfileStore()
        if option == AUTO:
            return cls([load(p) for p in store], None, settings)
        return cls([load(store.get(option))], option, settings)

    def __bool__(self) -> bool:
        return bool(self.profiles)

    def match(self, index: int, aligned: np.ndarray, face_size: float | None) -> LoadedProfile | None:
        """The profile face ``index`` shows, if exactly one (no notices: the preview's question)."""
        return match_face(index, aligned, face_size, self.profiles, self.named, make_embedder()).profile

    def restore(
        self,
        index: int,
        aligned: np.ndarray,
        detection: DetectedFace,
        detail: np.ndarray,
        w: float,
        networks,
        plain: PlainRestore,
        finish: FinishGuided,
        colour: Callable[[np.ndarray, np.ndarray], np.ndarray],
        warnings: list[str],
    ) -> tuple[np.ndarray, str] | None:
        """Face ``index`` restored with its person's profile, and the profile's name; None when the
        face is nobody's here (the caller restores it as usual).

        ``plain``, ``finish``: as for ``ReferenceSet.restore``; ``colour(restored, crop)``: the
        colour fix a plain restoration gets (for the adapter network's faces).
        """
        found = match_face(index, aligned, detection.size, self.profiles, self.named, make_embedder())
        if found.notice:
            warnings.append(found.notice)
        if found.profile is None:
            return None
        loaded = found.profile
        self.used.add(loaded.name)
        personal_plain: PlainRestore = plain
        adapter = loaded.profile.adapter_path
        if adapter is not None:
            try:
                personal = networks.personalised(adapter, loaded.name)
            except LikenessError as exc:
                warnings.append(f"face {index}: {exc}; its references are still used")
            else:

                def adapted(crop: np.ndarray) -> np.ndarray:
                    return colour(personal.restore([crop], w)[0], crop)

                personal_plain = adapted

        if not loaded.references:
            return personal_plain(detail), loaded.name
        references = ReferenceSet(loaded.references, self.settings)
        restored = references.restore(
            index, aligned, detection, detail, w, networks.torch_restorer, personal_plain, finish, warnings
        )
        return restored, loaded.name

    def note_unused(self, photo: str, warnings: list[str]) -> None:
        """One line when a named profile matched none of the photo's faces."""
        if self.named is not None and not self.used:
            warnings.append(f"{photo}: no face looks like {self.named}; the profile was not used")


def load_profile(profile: Profile, embedder=None) -> LoadedProfile:
    """A profile with its chosen references analysed (a damaged profile is a ProfileError)."""
    try:
        return LoadedProfile(profile, profile_references(profile, embedder=embedder))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"profile {profile.name!r} cannot be read ({exc}); delete it and create it again") from exc

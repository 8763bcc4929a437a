"""`python -m services.intake`: run the intake service alone in the foreground (settings from OMBUDSDESK_*)."""

from __future__ import annotations

from shared.runtime import run_service
from shared.settings import load_settings
from services.intake.settings import IntakeSettings
from services.intake.wiring import build_intake


def main() -> None:
    settings = load_settings(IntakeSettings)
    run_service(build_intake(settings), settings, "intake")


if __name__ == "__main__":
    main()

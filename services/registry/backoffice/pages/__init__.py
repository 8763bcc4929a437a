"""One module per page family of the back office; each exports `router` (an `APIRouter`), included by `app`."""

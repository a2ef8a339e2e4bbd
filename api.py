"""The review service over HTTP: ``create_app(config)`` builds the Flask app; the endpoints are listed in
``ur_service/app.py``.

The app lives in the ``ur_service`` package so that gunicorn (``ur_service.wsgi``) and ``import api`` always run
the same code: an editable install also copies this file into site-packages, where an old copy could
otherwise shadow the repository's.
"""

from ur_service.app import DEFAULTS, create_app

__all__ = ["DEFAULTS", "create_app"]

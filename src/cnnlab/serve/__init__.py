"""The web demo: a FastAPI app around a loaded :class:`cnnlab.run.Run`.

``cnnlab.serve.app.create_app(run, settings)`` builds the app (the ``serve`` extra:
``pip install 'cnnlab[serve]'``); ``cnnlab serve RUN`` runs it with uvicorn. ``codec`` holds the
request decoding rules, ``service`` what one request does, ``static/`` the pages. ``explain``
computes what every layer does to one image (the ``/explain`` page, routes in ``explain_api``);
``live`` streams a training run to a ``/train`` page (``cnnlab train --live``, no FastAPI needed).
"""

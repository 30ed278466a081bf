"""The web demo: a FastAPI app around a loaded :class:`cnnlab.run.Run`.

``cnnlab.serve.app.create_app(run, settings)`` builds the app (the ``serve`` extra:
``pip install 'cnnlab[serve]'``); ``cnnlab serve RUN`` runs it with uvicorn. ``codec`` holds the
request decoding rules, ``service`` what one request does, ``static/`` the drawing page.
"""

"""The served app: the daily report live from SQL, the review queue, the seed editor, search, feeds.

``narrwatch serve`` runs it; ``create_app`` builds it (tests and ASGI servers call that).
"""

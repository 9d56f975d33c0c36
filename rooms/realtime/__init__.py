"""The live table's transport: the socket consumer, its routing, the per-worker fan-out of
table events, group commit of votes and reveals, and the database thread the socket uses.

It sits on top of ``rooms``: it calls the table's services and publishes what they committed
(``rooms.broadcast``); nothing below it imports it.
"""

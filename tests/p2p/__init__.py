"""Tests of the p2p package (real py-libp2p nodes on 127.0.0.1)."""

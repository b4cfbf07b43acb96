"""SYN/RST segments stamped from a scapy-built template equal scapy's own build, byte for byte."""

from hypothesis import given, settings
from hypothesis import strategies as st

from probes.egress_syn import _scapy_segment, build_segment

ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))


@settings(max_examples=200, deadline=None)
@given(src=ipv4, dst=ipv4, sport=st.integers(1, 65535), dport=st.integers(1, 65535), flags=st.sampled_from(["S", "R"]),
       seq=st.integers(0, 2**32 - 1), ack=st.integers(0, 2**32 - 1))
def test_template_segment_matches_scapy(src, dst, sport, dport, flags, seq, ack):
    assert build_segment(src, dst, sport, dport, flags, seq, ack) == _scapy_segment(src, dst, sport, dport, flags, seq, ack)

"""SYN/RST segments stamped from a scapy-built template equal scapy's own build, byte for byte."""

from hypothesis import given, settings
from hypothesis import strategies as st

from probes.egress.syn import _scapy_segment, build_segment

ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))


@settings(max_examples=200, deadline=None)
@given(
    src=ipv4,
    dst=ipv4,
    sport=st.integers(1, 65535),
    dport=st.integers(1, 65535),
    flags=st.sampled_from(["S", "R"]),
    seq=st.integers(0, 2**32 - 1),
    ack=st.integers(0, 2**32 - 1),
)
def test_template_segment_matches_scapy(src, dst, sport, dport, flags, seq, ack):
    assert build_segment(src, dst, sport, dport, flags, seq, ack) == _scapy_segment(
        src, dst, sport, dport, flags, seq, ack
    )


@settings(max_examples=200, deadline=None)
@given(src=ipv4, dst=ipv4, sport=st.integers(1, 65535), dport=st.integers(1, 65535), bits=st.integers(0, 0x1FF))
def test_answer_summary_names_what_scapy_names(src, dst, sport, dport, bits):
    """The detail line is made without scapy; it must say what scapy says of the packet."""
    from scapy.layers.inet import IP, TCP

    from probes.egress.syn import describe_packet

    pkt = bytes(IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=bits))
    line = describe_packet(pkt)
    assert line == f"IP / TCP {src}:{sport} > {dst}:{dport} {IP(pkt)[TCP].flags}"


def test_icmp_summary_names_the_unreachable_code():
    from scapy.layers.inet import ICMP, IP, TCP

    from probes.egress.syn import describe_packet

    inner = bytes(IP(src="10.0.0.4", dst="203.0.113.10") / TCP(sport=40000, dport=443, flags="S"))[:28]
    pkt = bytes(IP(src="10.0.0.1", dst="10.0.0.4") / ICMP(type=3, code=1)) + inner
    assert describe_packet(pkt) == "IP / ICMP 10.0.0.1 > 10.0.0.4 dest-unreach host-unreachable"
    assert describe_packet(b"\x01\x02") == "01 02"  # garbage: hex, never an exception


def test_syn_mode_does_not_load_scapy():
    import subprocess
    import sys

    code = (
        "import sys; from probes.egress.syn import build_segment, describe_packet; "
        "build_segment('10.0.0.4', '203.0.113.10', 40000, 443, 'S', 1); describe_packet(b'E'); "
        "print('scapy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr

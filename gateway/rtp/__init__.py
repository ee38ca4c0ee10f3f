"""RTP: packetizers, RTCP, and the egress that sends packets to viewers."""

import stream.ports
def test_x(): assert stream.ports.EKMAN

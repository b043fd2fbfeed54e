"""Tests for load.py. Run: /usr/bin/python3 -m unittest discover -s examples/gevent-mysqldb"""

import http.server
import threading
import unittest

import load


class ParseDurationTest(unittest.TestCase):
    def test_valid(self):
        for text, want in [("5s", 5.0), ("500ms", 0.5), ("2m", 120.0), ("3", 3.0),
                           ("1.5s", 1.5), (".25s", 0.25), (" 7s ", 7.0)]:
            with self.subTest(text=text):
                self.assertAlmostEqual(load.parse_duration(text), want)

    def test_invalid(self):
        for text in ["", "s", "5h", "-1s", "five", "5 s", "1e3"]:
            with self.subTest(text=text):
                with self.assertRaises(ValueError):
                    load.parse_duration(text)


class PercentileTest(unittest.TestCase):
    def test_nearest_rank(self):
        hundred = [float(i) for i in range(1, 101)]
        for values, p, want in [
            ([], 50, 0.0),
            ([7.0], 99, 7.0),
            ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
            ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
            (hundred, 99, 99.0),
            (hundred, 100, 100.0),
            ([1.0, 2.0, 3.0], 0, 0.0),
            ([1.0, 2.0, 3.0], 0.1, 1.0),
        ]:
            with self.subTest(values=values[:5], p=p):
                self.assertEqual(load.percentile(values, p), want)


class TicketsTest(unittest.TestCase):
    def test_limit(self):
        t = load.Tickets(3)
        self.assertEqual([t.take() for _ in range(5)], [True, True, True, False, False])

    def test_unlimited(self):
        t = load.Tickets(0)
        self.assertTrue(all(t.take() for _ in range(1000)))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status = 200 if self.path == "/" else 500
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class RunTest(unittest.TestCase):
    def setUp(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def test_count_bound(self):
        s = load.run(self.base + "/", 3, 30.0, 10).summary("u", 3)
        self.assertEqual((s["requests"], s["errors"]), (10, 0))
        self.assertGreater(s["rate_per_s"], 0)
        self.assertLessEqual(s["p50_ms"], s["p99_ms"])

    def test_errors_counted(self):
        s = load.run(self.base + "/fail", 2, 30.0, 4).summary("u", 2)
        self.assertEqual((s["requests"], s["errors"]), (0, 4))
        self.assertIn("status 500", s["first_error"])
        self.assertEqual(load.main(["--url", self.base + "/fail", "-n", "2", "--json"]), 1)

    def test_refused(self):
        port = self.server.server_address[1]
        self.tearDown()
        s = load.run("http://127.0.0.1:%d/" % port, 1, 30.0, 2).summary("u", 1)
        self.assertEqual((s["requests"], s["errors"]), (0, 2))
        self.setUp()


if __name__ == "__main__":
    unittest.main()

// A thread pool serving requests: the JDK's com.sun.net.httpserver, whose
// dispatcher thread runs a selector and hands each exchange to a fixed pool
// of eight handler threads. Each request hashes a small buffer a few times.
//
//   java PoolServer.java PORT

import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.security.MessageDigest;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

public class PoolServer {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 128);
        AtomicInteger n = new AtomicInteger();
        server.setExecutor(Executors.newFixedThreadPool(8, r -> {
            Thread t = new Thread(r, "handler-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        }));
        byte[] data = new byte[4096];
        server.createContext("/", ex -> {
            byte[] sum;
            try {
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                for (int i = 0; i < 16; i++) {
                    md.update(data);
                }
                sum = md.digest();
            } catch (Exception e) {
                sum = new byte[0];
            }
            byte[] body = String.format("%d %02x\n", sum.length, sum.length > 0 ? sum[0] : 0).getBytes();
            ex.sendResponseHeaders(200, body.length);
            try (OutputStream os = ex.getResponseBody()) {
                os.write(body);
            }
        });
        server.start();
    }
}

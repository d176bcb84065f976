<?php
// PHP Memcached (Debian's php-memcached, on libmemcached 1.1.4) driven by the interop tests
// (test/integration/neighbours.test.ts). Reads a JSON array of jobs on stdin, prints a JSON array
// of results. Data arrives as JSON, never as code. Each job:
//   steps: libmemcached set-up calls in order, e.g.
//          ["option", "OPT_DISTRIBUTION", {"const": "DISTRIBUTION_CONSISTENT"}]
//          ["option", "OPT_PREFIX_KEY", "pbx1:"]   (an option is a Memcached:: constant's name; a
//          value is taken as is, or {"const": name} for a Memcached:: constant)
//          ["addServer", "127.0.0.1", 11211, 0]     (host, port, weight)
//          ["addServers", [["127.0.0.1", 11211, 0], ["/path/to.sock", 0, 0]]]
//          (the two differ for a socket: addServer records port 11211, addServers port 0)
//   ops:   {"op": "set", "items": [[key, base64 value, ttl], ...]}     strings (flags 0)
//          {"op": "setInt", "key": k, "value": n, "ttl": t}             PHP int (flags 1)
//          {"op": "get", "keys": [...]}       → {key: {"type": gettype, "b64": value}} (hits only)
//          {"op": "incr", "key": k, "delta": n}  → the new value
//          {"op": "where", "keys": [...]}     → {key: "host:port"} (getServerByKey)
// Any failure exits non-zero with the reason on stderr: the test must see it, never skip it.

function fail(string $message): void {
    fwrite(STDERR, "php-memcached.php: $message\n");
    exit(1);
}

function constantOf(string $name) {
    if (!defined("Memcached::$name")) fail("no constant Memcached::$name");
    return constant("Memcached::$name");
}

function valueOf($value) {
    return is_array($value) && isset($value['const']) ? constantOf($value['const']) : $value;
}

function runJob(array $job): array {
    $m = new Memcached();
    foreach ($job['steps'] as $step) {
        switch ($step[0]) {
            case 'option':
                if (!$m->setOption(constantOf($step[1]), valueOf($step[2]))) {
                    fail("setOption($step[1]) refused: " . $m->getResultMessage());
                }
                break;
            case 'addServer':
                if (!$m->addServer($step[1], $step[2], $step[3])) fail('addServer: ' . $m->getResultMessage());
                break;
            case 'addServers':
                if (!$m->addServers($step[1])) fail('addServers: ' . $m->getResultMessage());
                break;
            default:
                fail("unknown step $step[0]");
        }
    }
    $results = [];
    foreach ($job['ops'] as $op) {
        switch ($op['op']) {
            case 'set':
                foreach ($op['items'] as [$key, $b64, $ttl]) {
                    if (!$m->set($key, base64_decode($b64, true), $ttl)) fail("set $key: " . $m->getResultMessage());
                }
                $results[] = true;
                break;
            case 'setInt':
                if (!$m->set($op['key'], (int) $op['value'], $op['ttl'])) fail("set {$op['key']}: " . $m->getResultMessage());
                $results[] = true;
                break;
            case 'get':
                $got = $m->getMulti($op['keys']);
                // A server that failed gives a partial answer, not false: that is an error here.
                $rc = $m->getResultCode();
                if ($got === false || ($rc !== Memcached::RES_SUCCESS && $rc !== Memcached::RES_NOTFOUND)) {
                    fail('getMulti: ' . $m->getResultMessage());
                }
                $out = new stdClass();
                foreach ($got as $key => $value) {
                    $out->$key = ['type' => gettype($value), 'b64' => base64_encode((string) $value)];
                }
                $results[] = $out;
                break;
            case 'incr':
                $value = $m->increment($op['key'], $op['delta']);
                if ($value === false) fail("increment {$op['key']}: " . $m->getResultMessage());
                $results[] = $value;
                break;
            case 'where':
                $out = new stdClass();
                foreach ($op['keys'] as $key) {
                    $s = $m->getServerByKey($key);
                    if ($s === false) fail("getServerByKey $key: " . $m->getResultMessage());
                    $out->$key = $s['host'] . ':' . $s['port'];
                }
                $results[] = $out;
                break;
            default:
                fail("unknown op {$op['op']}");
        }
    }
    $m->quit();
    return $results;
}

$jobs = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
echo json_encode(array_map('runJob', $jobs), JSON_THROW_ON_ERROR), "\n";

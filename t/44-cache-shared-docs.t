# The cache keeps each answer parsed, and that one document is shared by the entry and every call it answers, on both
# loops at once: several calls of one route on the same key, shaped each its own way (target, allow, deny, rename),
# both merge modes, a dependent call whose URL reads the shared document, evictions, expiries and reloads under way.
# Every answer must be exactly what its own shaping gives (a shaping that modified the shared document would show in
# another call's answer), and conflux must end without a sanitizer report.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(time);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /u/{id}
    body: '{"id": "{id}", "name": "n\u00e9{id}", "seg": "s{id}", "deep": {"a": {"b": [1, 2.5, {"c": "\u0041"}]}}, "items": [{"sku": "x", "q": 1}, {"sku": "y", "q": 3, "p": 2}], "total": 1.25}'
    delay: { uniform: [0ms, 20ms] }
  - path: /v/{id}
    body: '{"v": "{id}", "total": 3}'
    delay: { uniform: [0ms, 10ms] }
  - path: /r/{seg}
    body: '[{"sku": "{seg}", "score": 0.5}, {"sku": "z"}, 7]'
    delay: { uniform: [0ms, 10ms] }
EOF
my $m = $mock->port;
my ($port, $admin) = (empty_port(), empty_port());

# a cache that holds about a third of the keys: entries are evicted while answers still hold their documents
sub config {
    my ($ttl) = @_;
    return <<"EOF";
listen:
  - host: 127.0.0.1
    port: $port
admin: 127.0.0.1:$admin
threads: 2
cache:
  memory: 40KiB
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 2s }
routes:
  - path: /g/{id}
    calls:
      - { name: a, backend: svc, path: "/u/{id}", cache: { ttl: $ttl, stale_while_revalidate: 2s } }
      - { name: b, backend: svc, path: "/u/{id}", cache: $ttl, allow: [id, name, items], rename: { name: title, id: name } }
      - { name: c, backend: svc, path: "/u/{id}", cache: $ttl, target: deep.a }
      - { name: d, backend: svc, path: "/r/{a.seg}", cache: $ttl, deny: [score], rename: { sku: id } }
  - path: /m/{id}
    merge: merge
    on_conflict: last
    calls:
      - { name: a, backend: svc, path: "/u/{id}", cache: $ttl, deny: [deep, items] }
      - { name: e, backend: svc, path: "/v/{id}", cache: $ttl, rename: { v: id } }
      - { name: f, backend: svc, path: "/u/{id}", cache: $ttl, target: items }
EOF
}

sub expected {
    my ($kind, $id) = @_;
    my $u = { id => "$id", name => "n\x{e9}$id", seg => "s$id", deep => { a => { b => [1, 2.5, { c => 'A' }] } },
              items => [{ sku => 'x', q => 1 }, { sku => 'y', q => 3, p => 2 }], total => 1.25 };
    if ($kind eq 'g') {
        return { a => $u, b => { name => "$id", title => "n\x{e9}$id", items => $u->{items} }, c => { b => [1, 2.5, { c => 'A' }] },
                 d => [{ id => "s$id" }, { id => 'z' }, 7] };
    }
    # merge: a's members (deep and items denied), then e's (v renamed to id: overrides a's id with the same text,
    # total 3 overrides 1.25); f is an array, so it fails as not_an_object and adds nothing
    return { id => "$id", name => "n\x{e9}$id", seg => "s$id", total => 3 };
}

my $gw = spawn_conflux(config('1s'));

subtest 'one answer of each route, as its shaping gives' => sub {
    for my $kind ('g', 'm') {
        my $r = http_get($gw->url("/$kind/1"));
        is($r->{status}, 200, "/$kind/1: 200");
        is_deeply(JSON::PP->new->utf8->decode($r->{body}), expected($kind, 1), "/$kind/1: the body");
    }
};

subtest 'many answers at once from both loops, through evictions, expiries and reloads' => sub {
    my $clients = 6;
    my $seconds = 4;
    my @kids;
    for my $k (1 .. $clients) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $rd;
            my $ua = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
            my $json = JSON::PP->new->utf8->canonical;
            my ($n, $bad, $first) = (0, 0, '');
            srand($$);
            my $end = time + $seconds;
            while (time < $end) {
                my $kind = rand() < 0.5 ? 'g' : 'm';
                my $id = 1 + int(rand(40));
                my $res = $ua->get("http://127.0.0.1:$port/$kind/$id");
                ++$n;
                my $v = $res->{status} == 200 ? eval { $json->decode($res->{content}) } : undef;
                my $ok = defined $v && $json->encode($v) eq $json->encode(expected($kind, $id));
                unless ($ok) {
                    ++$bad;
                    $first ||= "/$kind/$id: $res->{status} $res->{content}";
                }
            }
            print $wr "$n $bad $first\n";
            close $wr;
            _exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    # reloads while the clients run: the ttl changes, the cached documents and the flights stay
    my $reloads = 0;
    my $end = time + $seconds - 0.5;
    while (time < $end) {
        my $before = () = $gw->log_text =~ /conflux: reloaded /g;
        write_file($gw->{config}, config($reloads % 2 ? '1s' : '2s'));
        $gw->signal('HUP');
        ++$reloads if wait_until(sub { my $n = () = $gw->log_text =~ /conflux: reloaded /g; $n > $before }, 5);
        select(undef, undef, undef, 0.4);
    }
    my ($total, $bad) = (0, 0);
    for my $kid (@kids) {
        my ($pid, $rd) = @$kid;
        my $line = <$rd> // '0 1 no report';
        waitpid($pid, 0);
        my ($n, $b, $first) = split(' ', $line, 3);
        $total += $n;
        $bad += $b;
        diag("client $pid: first bad answer: $first") if $b;
    }
    cmp_ok($total, '>', 200, "$total answers");
    is($bad, 0, 'every answer is what its shaping gives');
    cmp_ok($reloads, '>=', 3, "$reloads reloads during the load");
    my $mx = $gw->metrics;
    cmp_ok($mx->{conflux_cache_evictions_total} // 0, '>', 0, 'entries were evicted');
    cmp_ok($mx->{'conflux_cache_results_total{result="coalesced"}'} // 0, '>', 0, 'calls were coalesced');
    cmp_ok($mx->{'conflux_cache_results_total{result="hit"}'} // 0, '>', 0, 'calls were hits');
    cmp_ok($mx->{conflux_cache_bytes} // 0, '<=', 40 * 1024, 'the store is within its bound');
};

$gw->stop;
done_testing();

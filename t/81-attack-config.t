# A careless config author: what -t must refuse. Both subtests: a route answering only safe
# methods (GET, HEAD, OPTIONS; RFC 9110 9.2.1) whose calls send POST/PUT/PATCH/DELETE upstream. A HEAD, a link
# prefetch, an <img src> (CSRF with forwarded cookies) or a browser's CORS preflight (OPTIONS) then fires an unsafe
# upstream request, and clients and intermediaries retry safe methods on their own (curl, HTTP::Tiny, CDNs).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $conflux = bindir() . '/conflux';
my $n = 0;
sub check_config {
    my ($yaml) = @_;
    my $file = write_file(sprintf('%s/attack-%02d.yaml', tmpdir(), ++$n), $yaml);
    my $r = run_cmd([$conflux, '-t', '-c', $file], timeout => 10);
    return ($r->{code}, $r->{err});
}
my $head = "listen: [{port: 1}]\nbackends:\n  b: { url: \"http://127.0.0.1:1\" }\nroutes:\n";

for my $case (
    ['a GET/HEAD route (the default methods) whose call POSTs upstream',
     "  - path: /charge/{id}\n    calls:\n      - { name: c, backend: b, method: POST, path: /c, body: { user: \"{id}\" } }\n"],
    ['a GET/HEAD/OPTIONS route whose call DELETEs upstream',
     "  - path: /x\n    methods: [GET, HEAD, OPTIONS]\n    calls:\n      - { name: c, backend: b, method: DELETE, path: /c }\n"],
) {
    my ($name, $routes) = @$case;
    subtest "-t refuses $name" => sub {
        my ($code, $err) = check_config($head . $routes);
        isnt $code, 0, 'refused' or diag "accepted: a safe method would send an unsafe upstream request";
        like $err // '', qr/methods|safe|GET/, 'saying why';
    };
}

done_testing;

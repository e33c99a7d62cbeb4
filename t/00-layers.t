# Includes flow down the layers of scripts/layers.txt (scripts/check-layers); and the check itself, on a fake tree.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $root = "$FindBin::Bin/..";
my $script = "$root/scripts/check-layers";

# runs check-layers with args (bounded by 30 s); returns its exit code (-1 when a signal ended it) and what it printed
# (stdout, then stderr)
sub check_layers {
    my $r = run_cmd([$^X, $script, @_], timeout => 30);
    return ($r->{code} // -1, $r->{out} . $r->{err});
}

subtest 'the tree: includes flow down in every enforced directory' => sub {
    my ($rc, $out) = check_layers();
    is $rc, 0, 'check-layers passes' or diag $out;
    like $out, qr/^mocks: ok/m, 'mocks/ is checked';
    like $out, qr/^gateway: ok/m, 'gateway/ is checked';
};

# a fake tree: top -> (mid1 mid2 | side) -> bottom, and a provisional directory
my $tmp = tmpdir() . '/layers';
sub put {
    my ($path, $text) = @_;
    make_path(dirname("$tmp/$path"));
    write_file("$tmp/$path", $text);
}
put('layers.txt', <<'EOF');
# a comment
[fake]
top
mid1 mid2 | side   # mid1 and mid2 include each other; side includes neither
bottom

[lax] provisional
a
b
EOF
put('fake/top.c', qq{#include <stdio.h>\n#include "cf_elsewhere.h"\n#include "mid1.h"\n#include "side.h"\n#include "bottom.h"\n});
put('fake/top.h', "/* top */\n");
put('fake/mid1.h', qq{#include "mid2.h"\n});
put('fake/mid2.h', qq{#include "mid1.h"\n#include "bottom.h"\n});
put('fake/side.h', "/* side */\n");
put('fake/bottom.c', qq{/* bottom */\n#include "bottom.h"\n});
put('fake/bottom.h', "/* bottom */\n");
put('lax/b.c', qq{#include "a.h"\n});
put('lax/a.h', "/* a */\n");
my @fake = ('--root', $tmp, '--table', "$tmp/layers.txt");

subtest 'self-test: a fake tree' => sub {
    my ($rc, $out) = check_layers(@fake);
    is $rc, 0, 'includes that flow down, and includes within a layer, pass' or diag $out;
    is $out, "fake: ok (7 files)\n", 'only the enforced directory is checked';

    put('fake/bottom.c', qq{/* bottom */\n#include "bottom.h"\n#include "top.h"\n});
    ($rc, $out) = check_layers(@fake);
    is $rc, 1, 'an upward include fails';
    like $out, qr{^fake/bottom\.c:3: #include "top\.h" points up: bottom is on a lower layer than top \(\Q$tmp\E/layers\.txt:5 and :3\)$}m,
        'naming the file, the line, the include and the layers';
    like $out, qr/^check-layers: 1 include\(s\) or file\(s\) against the layers of /m, 'and counting';
    put('fake/bottom.c', qq{/* bottom */\n#include "bottom.h"\n});

    put('fake/side.h', qq{#include "mid2.h"\n});
    ($rc, $out) = check_layers(@fake);
    is $rc, 1, 'an include between siblings fails';
    like $out, qr{^fake/side\.h:1: #include "mid2\.h" crosses over: side and mid2 are siblings}m, 'and says so';
    put('fake/side.h', "/* side */\n");

    put('fake/stray.c', qq{#include "top.h"\n});
    ($rc, $out) = check_layers(@fake);
    is $rc, 1, 'a file the table does not name fails';
    like $out, qr{^fake/stray\.c: not in the layer table \(add "stray" to \[fake\]}m, 'and says where to add it';
    unlink("$tmp/fake/stray.c");

    ($rc, $out) = check_layers(@fake, 'lax');
    is $rc, 1, 'a provisional directory is checked when named';
    like $out, qr{^lax/b\.c:1: #include "a\.h" points up}m, 'with the same report';

    ($rc, $out) = check_layers(@fake);
    is $rc, 0, 'the fake tree passes again' or diag $out;
};

subtest 'self-test: a wrong table or argument' => sub {
    put('bad.txt', "[fake]\ntop\nbottom | top\n");
    my ($rc, $out) = check_layers('--root', $tmp, '--table', "$tmp/bad.txt");
    is $rc, 2, 'a module named twice';
    like $out, qr{bad\.txt:3: "top" again \(first at line 2\)}, 'with the line of each';
    ($rc, $out) = check_layers(@fake, 'nowhere');
    is $rc, 2, 'a directory not in the table';
    like $out, qr/nowhere is not in .*\(\[fake\], \[lax\]\)/, 'listing those that are';
};

done_testing;

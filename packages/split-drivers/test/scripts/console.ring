# The console copy loops, wrapping and full rings.
cons.init
cons.write_out hello,\sworld\n
cons.read_out 5
cons.read_out
cons.read_out
cons.write_in \x00\x7f\xff\\#\q\x4\x41x
cons.read_in 3
cons.read_in 100
cons.set out_prod 0xfffffffe
cons.set out_cons 4294967294
cons.write_out abcd
cons.read_out 0
cons.read_out 1
cons.read_out
cons.set in_prod 1000
cons.set in_cons 0
cons.write_in 0123456789012345678901234567890123456789
cons.read_in 24
cons.write_in 0123456789012345678901234567890123456789
cons.read_in
cons.set in_cons 5
cons.read_in -1
cons.init
cons.write_in ab\
cons.read_in

# Every order on every ring: size, slot masks and multi-page slots.
ring blkif order=0
ring blkif order=1
ring blkif order=2
ring blkif order=3
ring blkif order=4 start=500
f.req operation=0 id=1
f.req operation=0 id=2
f.req operation=0 id=3
f.req operation=0 id=4
f.req operation=0 id=5
f.req operation=0 id=6
f.req operation=0 id=7
f.req operation=0 id=8
f.req operation=0 id=9
f.req operation=0 id=10
f.req operation=0 id=11
f.req operation=0 id=12
f.req operation=0 id=13
f.free
f.push
b.get_req
hexdump 0xc000
ring netif_tx order=0
ring netif_tx order=1
ring netif_tx order=2
ring netif_tx order=3
ring netif_tx order=4 start=4095
f.req gref=1
f.req gref=2
f.free
hexdump 0xffc0 0x10000
ring netif_rx order=0
ring netif_rx order=1
ring netif_rx order=2
ring netif_rx order=3
ring netif_rx order=4 start=0x7fffffff
f.req id=1 gref=2
f.free
hexdump 0x7f00
ring netif_rx order=010
ring netif_rx order=0x2

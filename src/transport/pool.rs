//! The registered buffer pool: one contiguous region cut into fixed-size slabs.
//!
//! Why one region: every kernel-bypass fabric wants to know, once, which memory it may DMA from or
//! to. io_uring takes it as a fixed buffer (`io_uring_register_buffers`), RDMA as a memory region
//! (`ibv_reg_mr`), DPDK as external memory (`rte_extmem_register`). [`BufferPool::region`] hands
//! out that one `(ptr, len)`. A message is encoded straight into a slab and the slab itself is
//! sent, so no copy happens between the encoder and the fabric.
//!
//! Why fixed-size slabs and a bounded free list: taking and returning a buffer is a pop and a push
//! on a preallocated index stack, so the hot path never allocates, and exhaustion is a typed error
//! ([`PoolError::Exhausted`]) the caller treats as backpressure. The pool never grows.
//!
//! Ownership: a [`Buf`] is the only handle to its slab (it is not `Clone`), so its bytes can be
//! borrowed mutably without locks; dropping it puts the slab back on the free list. A `Buf` keeps
//! the region alive through a reference count, so a buffer handed up to the consensus core cannot
//! dangle even if its transport is dropped first. The pool is owned by one shard (`!Send`): it is
//! created on the shard's thread so the kernel places its pages near that core (first touch).

use std::cell::RefCell;
use std::fmt;
use std::ptr::NonNull;
use std::rc::Rc;

/// Smallest slab: one cache line, enough for a frame header plus a small body.
pub const MIN_SLAB_BYTES: usize = 64;
/// Largest slab: a frame bigger than this belongs to a streaming protocol, not to one message.
pub const MAX_SLAB_BYTES: usize = 16 << 20;
/// Largest region: io_uring registers at most 1 GiB per fixed buffer.
pub const MAX_REGION_BYTES: usize = 1 << 30;

const HUGE_PAGE_BYTES: usize = 2 << 20;

/// Why a pool could not be created or a buffer could not be taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    /// The slab size is not a power of two in the allowed range.
    #[error(
        "buffer pool slab size {slab_bytes} B is invalid: use a power of two between \
         {MIN_SLAB_BYTES} and {MAX_SLAB_BYTES} bytes"
    )]
    BadSlabSize { slab_bytes: usize },
    /// Zero slabs, or more than the region limit allows.
    #[error(
        "buffer pool of {slab_count} slabs of {slab_bytes} B is invalid: use at least 1 slab and \
         at most {MAX_REGION_BYTES} bytes in total"
    )]
    BadSlabCount {
        slab_count: usize,
        slab_bytes: usize,
    },
    /// The kernel refused the memory mapping.
    #[error(
        "mmap of a {len_bytes} B buffer pool region failed: {} (check free memory and \
         vm.overcommit settings)", std::io::Error::from_raw_os_error(*errno)
    )]
    Map { len_bytes: usize, errno: i32 },
    /// Every slab is in use: the caller must wait for sends to complete or received buffers to be
    /// released (backpressure). The pool never grows.
    #[error(
        "buffer pool exhausted: all {slab_count} slabs are in use; release received buffers or \
         wait for send completions, or configure a larger pool"
    )]
    Exhausted { slab_count: usize },
}

/// Which kind of pages back the region (logged at creation; huge pages save TLB misses and are
/// what RDMA NICs prefer to register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// `MAP_HUGETLB` 2 MiB pages from the reserved pool.
    Huge,
    /// Ordinary 4 KiB pages (no huge pages were reserved, or the mapping was refused).
    Normal,
}

/// The mapping and the free list, shared by the pool and every outstanding [`Buf`].
struct Region {
    base: NonNull<u8>,
    map_len_bytes: usize,
    slab_bytes: usize,
    slab_count: usize,
    page_kind: PageKind,
    free: RefCell<FreeList>,
}

/// A stack of free slab indices, preallocated to hold every slab, so push never allocates.
struct FreeList {
    stack: Box<[u32]>,
    len: usize,
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len_bytes` are exactly what mmap returned, and no `Buf` is alive
        // (each holds an `Rc<Region>`), so nothing points into the mapping any more.
        let rc = unsafe { libc::munmap(self.base.as_ptr().cast(), self.map_len_bytes) };
        debug_assert_eq!(rc, 0, "munmap of the pool region failed");
    }
}

/// A pool of fixed-size buffers in one contiguous, registrable region. See the module docs.
pub struct BufferPool {
    region: Rc<Region>,
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("slab_bytes", &self.region.slab_bytes)
            .field("slab_count", &self.region.slab_count)
            .field("free", &self.free_count())
            .field("page_kind", &self.region.page_kind)
            .finish()
    }
}

impl BufferPool {
    /// Maps a region of `slab_count` slabs of `slab_bytes` each, trying 2 MiB huge pages first and
    /// falling back to normal pages (the log line says which). Call it on the owning shard's
    /// thread: the pages are populated here, so they land on that core's NUMA node.
    pub fn new(slab_bytes: usize, slab_count: usize) -> Result<Self, PoolError> {
        if !slab_bytes.is_power_of_two() || !(MIN_SLAB_BYTES..=MAX_SLAB_BYTES).contains(&slab_bytes)
        {
            return Err(PoolError::BadSlabSize { slab_bytes });
        }
        let len_bytes = slab_bytes.checked_mul(slab_count);
        let len_bytes = match len_bytes {
            Some(len)
                if slab_count > 0 && len <= MAX_REGION_BYTES && slab_count <= u32::MAX as usize =>
            {
                len
            }
            _ => {
                return Err(PoolError::BadSlabCount {
                    slab_count,
                    slab_bytes,
                })
            }
        };
        let (base, map_len_bytes, page_kind) = map_region(len_bytes)?;
        tracing::info!(
            slab_bytes,
            slab_count,
            region_bytes = map_len_bytes,
            pages = ?page_kind,
            "buffer pool mapped ({})",
            match page_kind {
                PageKind::Huge => "2 MiB huge pages",
                PageKind::Normal => "normal pages: no huge pages reserved (vm.nr_hugepages)",
            }
        );
        // Lowest index on top, so a fresh pool hands out slabs in address order.
        let stack: Box<[u32]> = (0..slab_count as u32).rev().collect();
        Ok(Self {
            region: Rc::new(Region {
                base,
                map_len_bytes,
                slab_bytes,
                slab_count,
                page_kind,
                free: RefCell::new(FreeList {
                    stack,
                    len: slab_count,
                }),
            }),
        })
    }

    /// Takes a free slab, with length 0. No allocation; `Exhausted` is backpressure.
    pub fn take(&self) -> Result<Buf, PoolError> {
        let mut free = self.region.free.borrow_mut();
        if free.len == 0 {
            return Err(PoolError::Exhausted {
                slab_count: self.region.slab_count,
            });
        }
        free.len -= 1;
        let index = free.stack[free.len];
        drop(free);
        debug_assert!((index as usize) < self.region.slab_count);
        Ok(Buf {
            region: Rc::clone(&self.region),
            index,
            len: 0,
        })
    }

    /// The whole region, for registration with a kernel or NIC.
    pub fn region(&self) -> (*mut u8, usize) {
        (
            self.region.base.as_ptr(),
            self.region.slab_bytes * self.region.slab_count,
        )
    }

    /// Bytes per slab: the largest frame a buffer can hold.
    pub fn slab_bytes(&self) -> usize {
        self.region.slab_bytes
    }

    /// Number of slabs in the region.
    pub fn slab_count(&self) -> usize {
        self.region.slab_count
    }

    /// Slabs currently free.
    pub fn free_count(&self) -> usize {
        self.region.free.borrow().len
    }

    /// Which pages back the region.
    pub fn page_kind(&self) -> PageKind {
        self.region.page_kind
    }

    /// Whether `buf` is a slab of this pool (a transport must only send its own pool's buffers,
    /// because only this region is registered with its fabric).
    pub fn owns(&self, buf: &Buf) -> bool {
        Rc::ptr_eq(&self.region, &buf.region)
    }
}

fn map_region(len_bytes: usize) -> Result<(NonNull<u8>, usize, PageKind), PoolError> {
    let base_flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
    let huge_len = len_bytes.div_ceil(HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES;
    // SAFETY: anonymous mapping with no address hint; the result is checked against MAP_FAILED.
    let huge = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            huge_len,
            libc::PROT_READ | libc::PROT_WRITE,
            base_flags | libc::MAP_HUGETLB,
            -1,
            0,
        )
    };
    if huge != libc::MAP_FAILED {
        let base = NonNull::new(huge.cast::<u8>()).expect("mmap never returns null on success");
        return Ok((base, huge_len, PageKind::Huge));
    }
    // SAFETY: as above.
    let normal = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len_bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            base_flags,
            -1,
            0,
        )
    };
    if normal == libc::MAP_FAILED {
        return Err(PoolError::Map {
            len_bytes,
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        });
    }
    let base = NonNull::new(normal.cast::<u8>()).expect("mmap never returns null on success");
    Ok((base, len_bytes, PageKind::Normal))
}

/// The one handle to a pool slab: index plus the length of the valid bytes. Not `Clone`; dropping
/// it returns the slab to its pool, without allocating.
pub struct Buf {
    region: Rc<Region>,
    index: u32,
    len: u32,
}

impl fmt::Debug for Buf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buf")
            .field("index", &self.index)
            .field("len", &self.len)
            .finish()
    }
}

impl Buf {
    /// Slab index within the pool's region.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Valid bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no byte is valid yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slab size: the most `set_len` accepts.
    pub fn capacity(&self) -> usize {
        self.region.slab_bytes
    }

    /// Sets how many bytes of the slab are valid (after writing into [`Buf::slab_mut`]).
    ///
    /// # Panics
    /// If `len_bytes` exceeds the slab: that is a bug in the encoder, not bad input.
    pub fn set_len(&mut self, len_bytes: usize) {
        assert!(
            len_bytes <= self.capacity(),
            "Buf::set_len {len_bytes} > slab {}",
            self.capacity()
        );
        self.len = len_bytes as u32;
    }

    /// Offset of this slab from the start of the region (for fabrics that address by offset, such
    /// as an RDMA lkey-relative address or an io_uring fixed buffer).
    pub fn region_offset(&self) -> usize {
        self.index as usize * self.region.slab_bytes
    }

    /// Address of the slab's first byte, for fabrics that post raw addresses (an RDMA SGE, an
    /// io_uring SQE). Writing through it while the `Buf` is alive is the fabric's business only.
    pub fn as_ptr(&self) -> *const u8 {
        self.slab_ptr()
    }

    fn slab_ptr(&self) -> *mut u8 {
        debug_assert!((self.index as usize) < self.region.slab_count);
        // SAFETY: index < slab_count, so the offset stays inside the mapping.
        unsafe { self.region.base.as_ptr().add(self.region_offset()) }
    }

    /// The valid bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: this `Buf` is the only handle to its slab (not Clone, indices are unique on the
        // free list), the slab lies inside the live mapping, and len <= slab size.
        unsafe { std::slice::from_raw_parts(self.slab_ptr(), self.len as usize) }
    }

    /// The whole slab, for encoding into; call [`Buf::set_len`] afterwards.
    pub fn slab_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.slab_ptr(), self.region.slab_bytes) }
    }

    /// Copies `bytes` into the slab and sets the length; `false` (and no change) if they do not fit.
    pub fn fill_from(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.capacity() {
            return false;
        }
        self.slab_mut()[..bytes.len()].copy_from_slice(bytes);
        self.set_len(bytes.len());
        true
    }

    /// Appends `bytes` after the valid bytes; `false` (and no change) if they do not fit.
    pub fn extend_from(&mut self, bytes: &[u8]) -> bool {
        let start = self.len();
        let Some(end) = start
            .checked_add(bytes.len())
            .filter(|end| *end <= self.capacity())
        else {
            return false;
        };
        self.slab_mut()[start..end].copy_from_slice(bytes);
        self.set_len(end);
        true
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let mut free = self.region.free.borrow_mut();
        let slot = free.len;
        // Bounded: the stack holds every slab, and each index is on it at most once.
        assert!(
            slot < free.stack.len(),
            "buffer pool free list overflow: a slab was returned twice"
        );
        free.stack[slot] = self.index;
        free.len = slot + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_is_a_typed_error_and_release_makes_room() {
        let pool = BufferPool::new(64, 2).unwrap();
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_ne!(a.index(), b.index());
        assert_eq!(
            pool.take().unwrap_err(),
            PoolError::Exhausted { slab_count: 2 }
        );
        drop(a);
        assert_eq!(pool.free_count(), 1);
        let c = pool.take().unwrap();
        assert_eq!(pool.free_count(), 0);
        drop((b, c));
        assert_eq!(pool.free_count(), 2);
    }

    #[test]
    fn slabs_are_disjoint_and_inside_the_region() {
        let pool = BufferPool::new(128, 4).unwrap();
        let (base, len) = pool.region();
        assert_eq!(len, 512);
        let mut bufs: Vec<Buf> = (0..4).map(|_| pool.take().unwrap()).collect();
        for (i, buf) in bufs.iter_mut().enumerate() {
            assert!(buf.fill_from(&[i as u8; 128]));
        }
        for (i, buf) in bufs.iter().enumerate() {
            assert!(buf.as_slice().iter().all(|b| *b == i as u8));
            let start = buf.as_slice().as_ptr() as usize;
            assert!(start >= base as usize && start + 128 <= base as usize + len);
            assert_eq!(start - base as usize, buf.region_offset());
        }
    }

    #[test]
    fn bad_geometry_is_rejected_with_the_value() {
        assert_eq!(
            BufferPool::new(100, 4).unwrap_err(),
            PoolError::BadSlabSize { slab_bytes: 100 }
        );
        assert_eq!(
            BufferPool::new(32, 4).unwrap_err(),
            PoolError::BadSlabSize { slab_bytes: 32 }
        );
        assert_eq!(
            BufferPool::new(64, 0).unwrap_err(),
            PoolError::BadSlabCount {
                slab_count: 0,
                slab_bytes: 64
            }
        );
        let msg = BufferPool::new(1 << 20, 2048).unwrap_err().to_string();
        assert!(msg.contains("2048 slabs"), "{msg}");
    }

    #[test]
    fn writes_that_do_not_fit_are_refused_without_change() {
        let pool = BufferPool::new(64, 1).unwrap();
        let mut buf = pool.take().unwrap();
        assert!(buf.fill_from(b"hello"));
        assert!(!buf.extend_from(&[0u8; 60]));
        assert_eq!(buf.as_slice(), b"hello");
        assert!(buf.extend_from(b" world"));
        assert_eq!(buf.as_slice(), b"hello world");
        assert!(!buf.fill_from(&[0u8; 65]));
    }

    #[test]
    fn a_buffer_outlives_its_pool_handle() {
        let pool = BufferPool::new(64, 1).unwrap();
        let mut buf = pool.take().unwrap();
        drop(pool);
        assert!(buf.fill_from(b"still mapped"));
        assert_eq!(buf.as_slice(), b"still mapped");
    }
}

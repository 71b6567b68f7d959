# The nested guest of tests/vm/test_libvirt_hotplug.py: the smallest "OS" that answers a PCI
# hot-unplug. QEMU's pc machine asks the guest to eject a device through the PIIX4 ACPI PCI
# hot-plug registers (the guest's ACPI code would run _EJ0, which writes the slot to B0EJ);
# without a guest that answers, `virsh detach-device` never completes. This does the same
# register writes a Linux guest's acpiphp would, a few ms after QEMU's multiboot loader starts
# it, instead of a nested Linux that needs minutes to boot under TCG in TCG.
#
# A multiboot (v1) kernel: QEMU's -kernel (libvirt's <os><kernel>) loads it directly. It says
# VFK-L2-READY on COM1, then wakes on each PIT tick (18.2 Hz, set up by SeaBIOS) to poll the
# pending-unplug register. test_libvirt_hotplug.py embeds the assembled bytes (L2_STUB);
# test_vm_harness.py checks they are this file's, and that the stub ejects on a real QEMU.
#
#   as --32 -o l2stub.o l2stub.S && ld -m elf_i386 -Ttext=0x100000 -e 0x100000 --oformat binary -o l2stub.bin l2stub.o
    .code32
    .text
header:                         # multiboot (v1) header, with the a.out-kludge address fields
    .long 0x1BADB002
    .long 0x00010000
    .long -(0x1BADB002 + 0x00010000)
    .long header                # header_addr
    .long header                # load_addr
    .long code_end              # load_end_addr
    .long stack_top             # bss_end_addr: the IDT and the stack, zeroed by the loader
    .long start                 # entry_addr
start:
    cli
    mov $stack_top, %esp
    mov $0xfe, %al              # PIC: only IRQ0 (the PIT's tick) on the master, nothing on the slave
    out %al, $0x21
    mov $0xff, %al
    out %al, $0xa1
    mov %cs, %bx
    mov $idt, %edi
    mov $256, %ecx
1:  mov $tick, %eax             # every vector: an interrupt gate to tick
    mov %ax, (%edi)
    mov %bx, 2(%edi)
    movw $0x8e00, 4(%edi)
    shr $16, %eax
    mov %ax, 6(%edi)
    add $8, %edi
    loop 1b
    lidt idtr
    mov $ready, %esi            # say so on COM1
    mov $0x3f8, %dx
2:  lodsb
    test %al, %al
    jz 3f
    out %al, %dx
    jmp 2b
3:  sti
poll:
    hlt                         # until the next tick
    mov $0xae04, %dx            # PIIX4 ACPI PCI hot-plug: slots with an unplug request (PCID)
    in %dx, %eax
    test %eax, %eax
    jz poll
    bsf %eax, %ecx              # one slot per eject write
    mov $1, %eax
    shl %cl, %eax
    mov $0xae08, %dx            # B0EJ: eject it, as the guest's _EJ0 would
    out %eax, %dx
    jmp poll
tick:
    push %eax
    mov $0x20, %al              # EOI to the master PIC
    out %al, $0x20
    pop %eax
    iret
ready:
    .asciz "VFK-L2-READY\n"
    .balign 8
idtr:
    .word 256 * 8 - 1
    .long idt
code_end:
    idt = code_end + 8          # 256 gates (bss)
    stack_top = idt + 256 * 8 + 1024

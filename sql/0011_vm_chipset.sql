-- A VM's chipset as oVirt's API has it: bios.type (SeaBIOS on i440fx or q35; the hosts have no
-- UEFI firmware) and custom_emulated_machine (a QEMU machine type; '' for the chipset's own).
-- Existing VMs were all i440fx ('pc').
ALTER TABLE vms ADD COLUMN bios_type text NOT NULL DEFAULT 'i440fx_sea_bios'
    CHECK (bios_type IN ('i440fx_sea_bios', 'q35_sea_bios'));
ALTER TABLE vms ADD COLUMN custom_emulated_machine text NOT NULL DEFAULT '';

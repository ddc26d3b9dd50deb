"""Dataset loaders, one module per source (MedMNIST, PCam, leukemia, CIFAR-10, digits, custom
folders and files); :func:`tsimcne_nb.load_dataset` picks one by name."""
